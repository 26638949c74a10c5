/*
 * Prints every size, offset and constant of include/guichet_classic.h, one
 * fact per line, for tests/classic_c.rs to compare with src/classic/layout.rs.
 */
#include <stdio.h>

#include "guichet_classic.h"

#define FIELD(S, F)                                                                 \
    printf("field %s.%s %zu %zu\n", #S, #F, offsetof(struct guichet_classic_##S, F), \
           sizeof(((struct guichet_classic_##S *)0)->F))
#define CONST(NAME) printf("const %s %lld\n", #NAME, (long long)GUICHET_CLASSIC_##NAME)

int main(void)
{
    printf("sizeof request %zu\n", sizeof(struct guichet_classic_request));
    printf("sizeof reply %zu\n", sizeof(struct guichet_classic_reply));
    FIELD(request, mtype);
    FIELD(request, action);
    FIELD(request, id_spec);
    FIELD(request, nb_places);
    FIELD(reply, mtype);
    FIELD(reply, texte);
    CONST(COURSE_KEY);
    CONST(MTYPE_LIST);
    CONST(MTYPE_RESERVE);
    CONST(MTYPE_QUIT);
    CONST(MTYPE_LIST_REPLY);
    CONST(MTYPE_RESERVE_REPLY);
    CONST(REQUEST_SIZE);
    CONST(REPLY_SIZE);
    return 0;
}
