/*  The table of live sessions, by connection number. It hands out the
    numbers (from 1 upwards, never reused in this process) and owns the
    sessions it holds. */
#ifndef GW_SESSIONS_H_INCLUDED
#define GW_SESSIONS_H_INCLUDED

#include "gw_session.h"

typedef struct _gw_sessions_t gw_sessions_t;

gw_sessions_t *gw_sessions_new (void);
void gw_sessions_destroy (gw_sessions_t **self_p);

//  A fresh connection number.
uint64_t gw_sessions_next_conn (gw_sessions_t *self);

//  Takes the session; returns it (borrowed), or NULL (and destroys it)
//  when its number is already in the table.
gw_session_t *gw_sessions_insert (gw_sessions_t *self, gw_session_t **session_p);

gw_session_t *gw_sessions_lookup (gw_sessions_t *self, uint64_t conn);

//  Removes and destroys the session.
void gw_sessions_remove (gw_sessions_t *self, uint64_t conn);

size_t gw_sessions_size (gw_sessions_t *self);

//  A snapshot of the live sessions (borrowed pointers), so that the caller
//  may remove or close sessions while it walks them; destroy the list.
zlistx_t *gw_sessions_list (gw_sessions_t *self);

void gw_sessions_test (bool verbose);

#endif
