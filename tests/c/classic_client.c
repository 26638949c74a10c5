/*
 * classic_client.c - a course client of the classic protocol, written from
 * CLASSIC.md alone (its own structs, no guichet header), for
 * tests/classic_c.rs. It behaves as the course's menu client does: opens
 * the queue by key without IPC_CREAT, sends 16-byte requests with mtypes 1
 * (list), 2 (reserve) and 5 (quit), and waits on mtype 10 or 11.
 *
 * Unlike a course client it also checks every reply it receives: exactly
 * 512 bytes, the expected mtype, a NUL within the body and only zero bytes
 * after it. A violation exits 3. An alarm bounds a hung test.
 *
 * Usage: classic_client KEY   (decimal or 0x hex), menu choices on stdin.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

struct requete {
    long mtype;
    int action;
    int id_spec;
    int nb_places;
};

struct reponse {
    long mtype;
    char texte[512];
};

static int q;

static void attendre(long type)
{
    struct reponse rep;
    memset(&rep, 0x5A, sizeof rep); /* so a short reply cannot look zero-filled */
    ssize_t n = msgrcv(q, &rep, sizeof rep.texte, type, 0);
    if (n < 0) {
        perror("msgrcv");
        exit(2);
    }
    if (n != (ssize_t)sizeof rep.texte || rep.mtype != type) {
        fprintf(stderr, "bad reply: %zd bytes, mtype %ld\n", n, rep.mtype);
        exit(3);
    }
    const char *nul = memchr(rep.texte, 0, sizeof rep.texte);
    if (nul == NULL) {
        fprintf(stderr, "bad reply: no NUL in 512 bytes\n");
        exit(3);
    }
    for (size_t i = (size_t)(nul - rep.texte); i < sizeof rep.texte; i++) {
        if (rep.texte[i] != 0) {
            fprintf(stderr, "bad reply: byte %zu after the NUL is %#x\n", i,
                    (unsigned)(unsigned char)rep.texte[i]);
            exit(3);
        }
    }
    printf("%s\n", rep.texte);
}

static void envoyer(struct requete *req)
{
    if (msgsnd(q, req, sizeof *req - sizeof req->mtype, 0) < 0) {
        perror("msgsnd");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s KEY\n", argv[0]);
        return 2;
    }
    alarm(60);
    q = msgget((key_t)strtol(argv[1], NULL, 0), 0666);
    if (q < 0) {
        printf("Serveur non lancé.\n");
        return 1;
    }
    for (;;) {
        int choix;
        printf("--- MENU ---\n1. Voir les spectacles\n2. Réserver\n3. Quitter\nChoix : ");
        if (scanf("%d", &choix) != 1)
            choix = 3;
        printf("%d\n", choix);
        struct requete req;
        /* What a course client leaves uninitialised (the fields a list or a
         * quit does not use, the padding), made deterministic garbage. */
        memset(&req, 0xA5, sizeof req);
        req.action = choix;
        if (choix == 1) {
            req.mtype = 1;
            envoyer(&req);
            attendre(10);
        } else if (choix == 2) {
            req.mtype = 2;
            printf("Numéro du spectacle : ");
            if (scanf("%d", &req.id_spec) != 1)
                return 2;
            printf("%d\nNombre de places : ", req.id_spec);
            if (scanf("%d", &req.nb_places) != 1)
                return 2;
            printf("%d\n", req.nb_places);
            envoyer(&req);
            attendre(11);
        } else {
            req.mtype = 5;
            envoyer(&req);
            printf("Au revoir.\n");
            return 0;
        }
    }
}
