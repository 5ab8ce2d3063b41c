#ifndef EV_VARIANTS_H
#define EV_VARIANTS_H
#include "ev.h"

const char *ev_op_name(int kind);
int ev_variant_count(void);
const char *ev_variant_name(int i);
/* The completed table of a built variant (every slot filled); -1 if no variant of that name was built. */
int ev_variant_table(const char *name, ev_kernels *out);

#endif
