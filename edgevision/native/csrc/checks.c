/* The check function of each op kind, by naming convention ev_check_<name> (weak: NULL until written). */
#include "engine.h"

#define EV_DECLARE_CHECK_(U, l) EV_WEAK int ev_check_##l(const ev_op *op, char *err, size_t errlen);
EV_OPS(EV_DECLARE_CHECK_)
#define EV_CHECK_SLOT_(U, l) [EV_OP_##U] = ev_check_##l,
static const ev_check_fn checks[EV_OP_COUNT] = {EV_OPS(EV_CHECK_SLOT_)};

ev_check_fn ev_check_for(int kind) { return (kind >= 0 && kind < EV_OP_COUNT) ? checks[kind] : NULL; }
