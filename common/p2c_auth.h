/*  Who may say what on the bus: one table of every internal message type
    and the roles that may send and receive it (docs/trust.md). The broker
    writes the sender's authenticated role into every message it forwards
    (the stamp frame, "role:keyname"); p2c_node's receive path checks it
    here, so a node can only do what its key's role allows, whatever it
    writes in a body. A role is a bit, so a row names several. */
#ifndef P2C_AUTH_H_INCLUDED
#define P2C_AUTH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define P2C_ROLE_BROKER     0x01u
#define P2C_ROLE_GATEWAY    0x02u
#define P2C_ROLE_SCHEDULER  0x04u
#define P2C_ROLE_LEDGER     0x08u
#define P2C_ROLE_CTL        0x10u

//  The role of a service name ("gateway", ...), 0 when it is none of ours.
//  The broker is not a service a node may announce.
unsigned p2c_auth_role (const char *service);

//  The service name of one role bit, "" for none
const char *p2c_auth_role_name (unsigned role);

//  True when a message of this type (P2c2r__Internal's msg_case) may go
//  from a sender of role `from` to a receiver of role `to`.
bool p2c_auth_allowed (int msg_case, unsigned from, unsigned to);

//  Splits a stamp "role:keyname" into its role bit (0 when unknown) and
//  the key name (borrowed from stamp, "" when none), for checks and logs.
unsigned p2c_auth_stamp_role (const char *stamp, size_t len, const char **key_p, size_t *key_len_p);

//  The first role that may send this type, as a service name ("" when
//  none): for tests that stand in for the broker and must stamp.
const char *p2c_auth_sender_of (int msg_case);

void p2c_auth_test (bool verbose);

#endif
