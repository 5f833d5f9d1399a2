/*  One client connection: its number, role and registration state, the
    reassembler for incoming messages and the bounded queue of outgoing
    frames (written only when libwebsockets says the socket is writeable).
    A plain record that the server reads and writes; the methods keep the
    queue's bounds. */
#ifndef GW_SESSION_H_INCLUDED
#define GW_SESSION_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "p2c_frame.h"
#include "gw_limits.h"
#include "p2c_msg.h"

struct lws;

typedef enum { GW_ROLE_NONE, GW_ROLE_PEER, GW_ROLE_GAMER } gw_role_t;
typedef enum { GW_STATE_NEW, GW_STATE_AUTHING, GW_STATE_REGISTERED } gw_state_t;
//  How the connection's messages are encoded; fixed by its first message
typedef enum { GW_DIALECT_PROTOBUF, GW_DIALECT_JSON } gw_dialect_t;

//  One queued outgoing frame; the message starts at buf + pre
typedef struct {
    uint8_t *buf;
    size_t pre;
    size_t len;
    bool binary;
} gw_outframe_t;

void gw_outframe_destroy (gw_outframe_t **self_p);

typedef struct {
    uint64_t conn;              //  number within this gateway, never reused
    struct lws *wsi;            //  the connection (borrowed from lws)
    gw_state_t state;
    gw_role_t role;             //  set when registration starts
    char *name;                 //  peer_id or gamer_id, once registering
    int64_t account_id;         //  from the ledger, once registered
    char *owner;                //  its account's owner from the ledger, NULL: none
    char auth_key_hash [65];    //  hex SHA-256 of the API key while the ledger is asked
    uint64_t auth_corr;         //  correlation of the AuthRequest in flight
    int64_t auth_deadline_ms;   //  when that request is given up
    P2c2r__ClientMessage *reg;  //  the registration message (capabilities)
    gw_dialect_t dialect;
    bool dialect_set;           //  the first message has fixed the dialect
    p2c_frame_t *rx;             //  reassembly of the incoming message
    zlistx_t *outq;             //  gw_outframe_t waiting for writeable
    size_t outq_bytes;          //  bytes in outq
    size_t outq_max;            //  bound on frames in outq
    size_t outq_max_bytes;      //  bound on bytes in outq
    unsigned bad_in_row;        //  bad frames since the last good one
    uint64_t bad_total;         //  bad frames in all
    size_t tasks;               //  pending tasks of this gamer
    char ip [64];               //  the client's address (after a trusted proxy's X-Forwarded-For)
    bool ip_counted;            //  counted in the per-address table
    char key_hash [65];         //  the auth cache entry of its API key, "" when none
    int64_t connected_ms;       //  when the WebSocket opened
    int64_t last_rx_ms;         //  last message or pong from the client
    gw_bucket_t msgs;           //  messages per second
    zhashx_t *assigned;         //  peer: task id -> attempt + 1 of tasks sent to it
    bool paused;                //  peer: its last heartbeat said it is paused
    bool wipe_rx;               //  the message just handled held an API key: wipe its bytes
    uint32_t slots;             //  peer: tasks at once its last heartbeat gave (0: as registered)
    gw_bucket_t earnings_rate;  //  get_earnings requests (gw_earnings.c)
    uint64_t earnings_corr;     //  ... the one the ledger has not answered, 0: none
    uint64_t earnings_seq;      //  ... its attempt number
    int64_t earnings_deadline_ms;   //  ... given up then
    bool subscribed;            //  figures pushed every second (gw_subscribe.c)
    int64_t sub_next_ms;        //  ... the next push
    bool closing;               //  close once the queue is written
    int close_code;             //  WebSocket close status
    char close_reason [100];
} gw_session_t;

gw_session_t *gw_session_new (uint64_t conn, struct lws *wsi, size_t max_frame,
                              size_t outq_max, size_t outq_max_bytes);
void gw_session_destroy (gw_session_t **self_p);

//  Queues a frame, taking the buffer (message at *buf_p + pre). 0, or -1
//  when the queue is full: then the buffer is freed and the caller should
//  drop the connection, whose client does not read.
int gw_session_queue (gw_session_t *self, uint8_t **buf_p, size_t pre, size_t len,
                      bool binary);

//  The oldest queued frame, taken out (the caller destroys it); NULL when
//  the queue is empty.
gw_outframe_t *gw_session_pop (gw_session_t *self);

size_t gw_session_queued (gw_session_t *self);

//  Takes queued frames out, oldest first, into one buffer as complete
//  WebSocket frames (server to client: unmasked, FIN set), for one write
//  instead of one per frame: as many as fit in cap bytes (counting 10
//  header bytes each); *buf_p grows (realloc) up to pre + cap. Returns the
//  bytes written at *buf_p + pre; 0 when the queue is empty, the oldest
//  frame alone does not fit, or memory ran out (then nothing is taken).
size_t gw_session_take_batch (gw_session_t *self, uint8_t **buf_p, size_t *size_p,
                              size_t pre, size_t cap);

//  The WebSocket header of an unfragmented server frame into out (at
//  least 10 bytes); returns its length
size_t gw_ws_header (uint8_t *out, size_t len, bool binary);

//  Drops every queued frame (a client that does not read gets only its
//  close frame).
void gw_session_clear (gw_session_t *self);

//  Remembers the attempt of a task assigned to this peer; a JSON peer
//  does not echo it. At most GW_SESSION_MAX_ASSIGNED are kept.
void gw_session_assigned_add (gw_session_t *self, const char *task_id, uint32_t attempt);

//  Takes a task out: true and *attempt_p when it was assigned here.
bool gw_session_assigned_take (gw_session_t *self, const char *task_id, uint32_t *attempt_p);

size_t gw_session_assigned (gw_session_t *self);

#define GW_SESSION_MAX_ASSIGNED 4096

//  Asks for the connection to close with a status and reason once what is
//  queued has been written.
void gw_session_close (gw_session_t *self, int code, const char *reason);

const char *gw_role_name (gw_role_t role);

void gw_session_test (bool verbose);

#endif
