/*  The gateway's rules (see gw_core.h). This file holds the object,
    client messages in (reassembly, rate limit, decoding per dialect, one
    handler per kind) and answers out (encoded per dialect, queued on the
    session, the glue woken), connections opening and closing with their
    per-address limits, and the cron. Registration is in gw_register.c,
    the submit path, delivery, the deadline guard and peer events in
    gw_tasks.c (gw_core_int.h joins them).

    The clock comes in with every call and is kept in now_ms for the
    handlers below it; nothing here reads a clock or a socket. */
#include "gw_core_int.h"
#include "gw_json.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <stdarg.h>

#define GW_SLOW_CRON_MS     1000    //  chores that need not run every tick
#define GW_CLOSE_WAIT_MS    1500    //  after the going-away closes, the loop ends by then

// ---------------------------------------------------------------------------
//  Pure helpers

bool
gw_valid_id (const char *id)
{
    if (!id)
        return false;
    size_t n = strlen (id);
    if (n == 0 || n > GW_MAX_ID)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) id [i] < 0x21 || (unsigned char) id [i] > 0x7e)
            return false;
    return true;
}
// ---------------------------------------------------------------------------
//  Sending to clients: encode per dialect, queue, wake the glue

//  Metric labels come only from this list, never from free text a client
//  (or a peer's error code passed through the scheduler) could vary
static const char *
s_code_label (const char *code)
{
    static const char *known [] = { "bad_request", "auth_failed", "too_large", "rate_limited",
        "no_peers", "timeout", "invalid_params", "unknown_task_type", "insufficient_funds",
        "kernel_error", "rejected", "unavailable", "not_found", NULL };
    for (int i = 0; code && known [i]; i++)
        if (!strcmp (code, known [i]))
            return known [i];
    return "other";
}

static const char *
s_server_kind (const P2c2r__ServerMessage *m)
{
    switch (m->msg_case) {
        case P2C2R__SERVER_MESSAGE__MSG_REGISTERED: return "registered";
        case P2C2R__SERVER_MESSAGE__MSG_ASSIGN: return "execute_task";
        case P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT: return "task_result";
        case P2C2R__SERVER_MESSAGE__MSG_ERROR: return "error";
        case P2C2R__SERVER_MESSAGE__MSG_EARNINGS: return "earnings";
        case P2C2R__SERVER_MESSAGE__MSG_AGENTS: return "agents";
        case P2C2R__SERVER_MESSAGE__MSG_REPUTATION: return "reputation";
        default: return "other";
    }
}

void
gw_core_close (gw_core_t *self, gw_session_t *s, int code, const char *reason)
{
    gw_session_close (s, code, reason);
    self->io.wake (self->io.arg, s, GW_WAKE_WRITE);
}

//  Queues one message for a client. A client whose queue is full does not
//  read what it is sent: it is dropped rather than allowed to hold memory.
void
gw_core_send (gw_core_t *self, gw_session_t *s, const P2c2r__ServerMessage *m)
{
    if (s->closing)
        return;
    size_t len = 0;
    bool binary = s->dialect == GW_DIALECT_PROTOBUF;
    uint8_t *buf = binary ? p2c_msg_pack_server (m, self->cfg.pre, &len)
                          : gw_json_encode (m, self->cfg.pre, &len);
    if (!buf) {
        log_warn ("cannot encode conn=%llu kind=%d dialect=%s",
                  (unsigned long long) s->conn, (int) m->msg_case, binary ? "protobuf" : "json");
        return;
    }
    if (gw_session_queue (s, &buf, self->cfg.pre, len, binary) != 0) {
        log_warn ("send queue full, closing conn=%llu role=%s id=%s",
                  (unsigned long long) s->conn, gw_role_name (s->role), s->name ? s->name : "-");
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "send_queue");
        //  What is queued will not be read: only the close frame goes out,
        //  and a client that does not even take that is cut (the glue's
        //  GW_WAKE_CUT: after 5 s)
        gw_session_clear (s);
        gw_session_close (s, GW_CLOSE_POLICY, "slow consumer: send queue full");
        self->io.wake (self->io.arg, s, GW_WAKE_CUT);
        return;
    }
    gw_metrics_inc (self->metrics, GW_M_MSG_OUT, s_server_kind (m));
    if (m->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR)
        gw_metrics_inc (self->metrics, GW_M_ERRORS, s_code_label (m->error->code));
    else
    if (m->msg_case == P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT && !m->task_result->ok)
        gw_metrics_inc (self->metrics, GW_M_ERRORS, s_code_label (m->task_result->error_code));
    self->io.wake (self->io.arg, s, GW_WAKE_WRITE);
}

void
gw_core_send_error (gw_core_t *self, gw_session_t *s, const char *code, const char *text,
                    const char *client_ref)
{
    P2c2r__Error err = P2C2R__ERROR__INIT;
    err.code = (char *) code;
    err.message = (char *) text;
    err.client_ref = (char *) (client_ref ? client_ref : "");
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_ERROR;
    m.error = &err;
    gw_core_send (self, s, &m);
}

//  Answers a bad frame. Nothing else happens for it; a client that sends
//  only bad frames is closed with 1008 after max_bad_frames in a row.
void
gw_core_bad (gw_core_t *self, gw_session_t *s, const char *code, const char *client_ref,
             const char *fmt, ...)
{
    char text [256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    self->counters.bad_frames++;
    s->bad_total++;
    s->bad_in_row++;
    log_debug ("bad frame conn=%llu code=%s in_row=%u", (unsigned long long) s->conn,
               code, s->bad_in_row);
    gw_core_send_error (self, s, code, text, client_ref);
    if (s->bad_in_row >= self->cfg.max_bad_frames && !s->closing) {
        log_info ("closing conn=%llu reason=bad_frames count=%u last=%s",
                  (unsigned long long) s->conn, s->bad_in_row, code);
        gw_core_close (self, s, GW_CLOSE_POLICY, !strcmp (code, "rate_limited")
                       ? "rate limit exceeded" : "too many bad frames");
    }
}

void
gw_core_task_error (gw_core_t *self, gw_session_t *s, const char *task_id, const char *client_ref,
                    const char *code, const char *text)
{
    P2c2r__TaskReply r = P2C2R__TASK_REPLY__INIT;
    r.task_id = (char *) (task_id ? task_id : "");
    r.client_ref = (char *) (client_ref ? client_ref : "");
    r.ok = false;
    r.error_code = (char *) code;
    r.error = (char *) text;
    P2c2r__ServerMessage m = P2C2R__SERVER_MESSAGE__INIT;
    m.msg_case = P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT;
    m.task_result = &r;
    gw_core_send (self, s, &m);
}

// ---------------------------------------------------------------------------
//  Client messages after registration

//  True when the session is registered in the role; else answers bad.
bool
gw_core_require (gw_core_t *self, gw_session_t *s, gw_role_t role, const char *what,
                 const char *client_ref)
{
    if (s->state != GW_STATE_REGISTERED) {
        gw_core_bad (self, s, "bad_request", client_ref,
                     "not_registered: register as a %s before %s", gw_role_name (role), what);
        return false;
    }
    if (s->role != role) {
        gw_core_bad (self, s, "bad_request", client_ref, "%s is for a %s, this connection is a %s",
                     what, gw_role_name (role), gw_role_name (s->role));
        return false;
    }
    return true;
}

//  A peer's heartbeat. The load is not used yet; a pause or resume, or a
//  new number of tasks it takes at once (an agent adapts it to the round
//  trip, agent/agt_depth.h), is passed on to the scheduler as one
//  refreshed PeerUp (idempotent there, which caps the slots); the same
//  state again sends nothing.
static void
s_heartbeat (gw_core_t *self, gw_session_t *s, const P2c2r__Heartbeat *hb)
{
    const P2c2r__Capabilities *caps = s->reg && s->reg->register_peer
                                    ? s->reg->register_peer->capabilities : NULL;
    uint32_t slots = s->slots ? s->slots : caps ? caps->slots : 0;
    bool pause = hb->paused != s->paused;
    bool resize = hb->slots && hb->slots != slots;
    if (!pause && !resize)
        return;
    if (pause)
        log_info ("peer %s conn=%llu id=%s", hb->paused ? "paused" : "resumed",
                  (unsigned long long) s->conn, s->name);
    else
        log_debug ("peer slots conn=%llu id=%s slots=%u", (unsigned long long) s->conn,
                   s->name, hb->slots);
    s->paused = hb->paused;
    if (resize)
        s->slots = hb->slots;
    gw_tasks_peer_up (self, s);
}

//  One handler per message kind. Handlers that keep the message take it
//  from *msg_p.
static void
s_dispatch (gw_core_t *self, gw_session_t *s, P2c2r__ClientMessage **msg_p)
{
    P2c2r__ClientMessage *msg = *msg_p;
    switch (msg->msg_case) {
        case P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER:
            gw_register_handle (self, s, GW_ROLE_PEER, msg_p);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_REGISTER_GAMER:
            gw_register_handle (self, s, GW_ROLE_GAMER, msg_p);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_SUBMIT:
            gw_tasks_submit (self, s, msg->submit);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_RESULT:
            gw_tasks_result (self, s, msg->result);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT:
            if (gw_core_require (self, s, GW_ROLE_PEER, "heartbeat", NULL)
                && s->state == GW_STATE_REGISTERED && msg->heartbeat)
                s_heartbeat (self, s, msg->heartbeat);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_SUBSCRIBE:
            gw_subscribe_handle (self, s, msg->subscribe);
            break;
        case P2C2R__CLIENT_MESSAGE__MSG_GET_EARNINGS:
            gw_earnings_handle (self, s);
            break;
        default:
            gw_core_bad (self, s, "bad_request", NULL, "unknown message kind");
            break;
    }
}

static const char *
s_client_kind (const P2c2r__ClientMessage *m)
{
    switch (m->msg_case) {
        case P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER: return "register_peer";
        case P2C2R__CLIENT_MESSAGE__MSG_REGISTER_GAMER: return "register_gamer";
        case P2C2R__CLIENT_MESSAGE__MSG_SUBMIT: return "submit_task";
        case P2C2R__CLIENT_MESSAGE__MSG_RESULT: return "task_result";
        case P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT: return "heartbeat";
        case P2C2R__CLIENT_MESSAGE__MSG_GET_EARNINGS: return "get_earnings";
        case P2C2R__CLIENT_MESSAGE__MSG_SUBSCRIBE: return "subscribe";
        default: return "other";
    }
}

//  Over the rate: answered, not done. A submit gets its one terminal
//  reply; in a row they count as bad frames, so a flood ends in a close
static void
s_rate_limited (gw_core_t *self, gw_session_t *s, P2c2r__ClientMessage *msg, const char *ref)
{
    gw_metrics_inc (self->metrics, GW_M_LIMITS, "rate_limited");
    if (msg && msg->msg_case == P2C2R__CLIENT_MESSAGE__MSG_SUBMIT
        && s->state == GW_STATE_REGISTERED && s->role == GW_ROLE_GAMER) {
        gw_core_task_error (self, s, NULL, ref, "rate_limited", "too many messages per second");
        s->bad_total++;
        s->bad_in_row++;
        self->counters.bad_frames++;
        if (s->bad_in_row >= self->cfg.max_bad_frames && !s->closing)
            gw_core_close (self, s, GW_CLOSE_POLICY, "rate limit exceeded");
    }
    else
        gw_core_bad (self, s, "rate_limited", *ref ? ref : NULL, "too many messages per second");
}

void
gw_core_message (gw_core_t *self, gw_session_t *s, const uint8_t *data, size_t size,
                 bool binary, int64_t now_ms)
{
    self->now_ms = now_ms;
    if (!s->dialect_set) {
        s->dialect = binary ? GW_DIALECT_PROTOBUF : GW_DIALECT_JSON;
        s->dialect_set = true;
    }
    s->last_rx_ms = now_ms;
    bool allowed = gw_bucket_take (&s->msgs, self->cfg.rate_msgs, self->cfg.rate_burst, now_ms);
    uint64_t bad_before = s->bad_total;
    const char *code = "bad_request";
    char why [200] = "bad frame", ref [GW_MAX_CLIENT_REF + 1] = "";
    P2c2r__ClientMessage *msg = NULL;
    if (binary) {
        msg = p2c_msg_unpack_client (data, size, self->cfg.max_frame);
        if (!msg)
            snprintf (why, sizeof why, "undecodable frame: expected one protobuf ClientMessage");
        else
        if (msg->msg_case == P2C2R__CLIENT_MESSAGE__MSG_SUBMIT)
            snprintf (ref, sizeof ref, "%s", msg->submit->client_ref);
    }
    else
        msg = gw_json_decode ((const char *) data, size, self->cfg.max_frame, &code, why,
                              sizeof why, ref, sizeof ref);
    gw_metrics_inc (self->metrics, GW_M_MSG_IN, msg ? s_client_kind (msg) : "undecodable");
    if (!allowed) {
        s_rate_limited (self, s, msg, ref);
        gw_register_wipe (s, msg);
        p2c_msg_client_free (&msg);
        return;
    }
    if (!msg) {
        gw_core_bad (self, s, code, *ref ? ref : NULL, "%s", why);
        return;
    }
    s_dispatch (self, s, &msg);
    p2c_msg_client_free (&msg);
    if (s->bad_total == bad_before)
        s->bad_in_row = 0;
}

void
gw_core_receive (gw_core_t *self, gw_session_t *s, const void *data, size_t len,
                 size_t remaining, bool final, bool binary, int64_t now_ms)
{
    if (s->closing)
        return;
    self->now_ms = now_ms;
    p2c_frame_status_t st = p2c_frame_add (s->rx, data, len, remaining, final, binary);
    if (st == P2C_FRAME_TOO_LARGE) {
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "frame_too_large");
        gw_core_bad (self, s, "too_large", NULL, "message larger than %zu bytes",
                     self->cfg.max_frame);
        //  Said as soon as it is known (from an announced length, the rest
        //  may never come); the rest of the message is read and dropped
        //  without holding it, and the connection goes on
    }
    else
    if (st == P2C_FRAME_NO_BUDGET) {
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "input_budget");
        log_info ("closing conn=%llu reason=input_budget held=%zu max=%zu",
                  (unsigned long long) s->conn, self->input.used, self->input.max);
        gw_core_send_error (self, s, "unavailable",
                            "gateway busy: too much unfinished input, try again later", NULL);
        gw_core_close (self, s, GW_CLOSE_TRY_LATER, "server busy: input budget full");
    }
    else
    if (st == P2C_FRAME_DONE) {
        gw_core_message (self, s, p2c_frame_data (s->rx), p2c_frame_size (s->rx),
                         p2c_frame_binary (s->rx), now_ms);
        if (s->wipe_rx || s->state != GW_STATE_REGISTERED) {
            //  A registration (or anything before one, malformed ones
            //  included): its API key must not stay in the frame buffer
            //  (ours, heap memory; const only to its readers). Few frames
            //  come before a registration, each bounded by max_frame.
            explicit_bzero ((void *) p2c_frame_data (s->rx), p2c_frame_size (s->rx));
            s->wipe_rx = false;
        }
    }
    else
        s->last_rx_ms = now_ms;
}

// ---------------------------------------------------------------------------
//  Messages from the broker

void
gw_core_handle (gw_core_t *self, const char *sender, P2c2r__Internal *msg, int64_t now_ms)
{
    self->now_ms = now_ms;
    switch (msg->msg_case) {
        case P2C2R__INTERNAL__MSG_AUTH_REPLY:
            gw_register_on_reply (self, msg->auth_reply);
            break;
        case P2C2R__INTERNAL__MSG_DELIVER:
            gw_tasks_deliver (self, sender, msg->deliver);
            break;
        case P2C2R__INTERNAL__MSG_TASK_ASSIGN:
            gw_tasks_assign (self, msg->task_assign);
            break;
        case P2C2R__INTERNAL__MSG_SETTLE_ACK:
            gw_tasks_failed_ack (self, msg->settle_ack);
            break;
        case P2C2R__INTERNAL__MSG_NODE_EVENT:
            gw_tasks_node_event (self, msg->node_event);
            break;
        case P2C2R__INTERNAL__MSG_REPUTATION_REPLY:
            gw_subscribe_on_reputation (self, msg->reputation_reply);
            break;
        case P2C2R__INTERNAL__MSG_EARNINGS_REPLY:
            gw_earnings_on_reply (self, msg->earnings_reply);
            break;
        default:
            self->counters.internal_dropped++;
            log_debug ("unexpected internal type=%s from=%s",
                       p2c_msg_internal_name (msg), sender);
            break;
    }
}

// ---------------------------------------------------------------------------
//  Connections opening and closing

gw_session_t *
gw_core_open (gw_core_t *self, struct lws *wsi, const char *ip, int64_t now_ms)
{
    self->now_ms = now_ms;
    gw_session_t *s = gw_session_new (gw_sessions_next_conn (self->sessions), wsi,
                                      self->cfg.max_frame, self->cfg.send_queue,
                                      self->cfg.send_queue_bytes);
    if (!s)
        return NULL;
    s = gw_sessions_insert (self->sessions, &s);
    if (!s)
        return NULL;
    if (self->cfg.max_input_bytes)
        p2c_frame_set_budget (s->rx, &self->input);
    s->connected_ms = s->last_rx_ms = now_ms;
    snprintf (s->ip, sizeof s->ip, "%s", ip);
    gw_metrics_inc (self->metrics, GW_M_EVENTS, "connect");
    gw_admit_t admit = gw_iplimit_admit (self->iplimit, s->ip, now_ms);
    if (admit == GW_ADMIT_OK)
        s->ip_counted = true;
    else {
        //  Refused with a reason the client can read, rather than a reset
        bool conns = admit == GW_ADMIT_CONNS;
        gw_metrics_inc (self->metrics, GW_M_LIMITS, conns ? "conns_per_ip" : "connects_per_ip");
        log_info ("connection refused conn=%llu ip=%s reason=%s",
                  (unsigned long long) s->conn, s->ip, conns ? "conns_per_ip" : "connect_rate");
        gw_core_close (self, s, GW_CLOSE_TRY_LATER,
                       conns ? "too many connections from your address"
                             : "too many connects per second from your address");
        return s;
    }
    if (self->quitting)
        gw_core_close (self, s, GW_CLOSE_GOING_AWAY, "going away: gateway shutting down");
    log_debug ("connected conn=%llu ip=%s", (unsigned long long) s->conn, s->ip);
    return s;
}

bool
gw_core_may_connect (gw_core_t *self, const char *ip, int64_t now_ms)
{
    if (self->quitting)
        return false;
    gw_admit_t admit = gw_iplimit_check (self->iplimit, ip, now_ms);
    if (admit == GW_ADMIT_OK)
        return true;
    gw_metrics_inc (self->metrics, GW_M_LIMITS, admit == GW_ADMIT_CONNS ? "conns_per_ip"
                                                                        : "connects_per_ip");
    log_debug ("connection refused before the handshake ip=%s reason=%s", ip,
               admit == GW_ADMIT_CONNS ? "conns_per_ip" : "connect_rate");
    return false;
}

void
gw_core_closed (gw_core_t *self, gw_session_t *s, int64_t now_ms)
{
    self->now_ms = now_ms;
    if (s->state == GW_STATE_REGISTERED && s->role == GW_ROLE_PEER)
        gw_tasks_peer_down (self, s->conn);
    gw_subscribe_forget (self, s);
    if (s->ip_counted)
        gw_iplimit_release (self->iplimit, s->ip);
    if (*s->key_hash) {
        gw_authentry_t *e = gw_authcache_lookup (self->authcache, s->key_hash);
        if (e && e->users)
            e->users--;
    }
    //  lws hangs up on a client silent past the ping and pong time; it
    //  does not say so, but the silence does
    if (!s->closing && now_ms - s->last_rx_ms >= self->cfg.idle_ms - 1000)
        gw_metrics_inc (self->metrics, GW_M_LIMITS, "idle_timeout");
    gw_metrics_inc (self->metrics, GW_M_EVENTS, "close");
    size_t dropped = gw_pending_drop_conn (self->pending, s->conn);
    log_info ("disconnected conn=%llu role=%s id=%s tasks_dropped=%zu",
              (unsigned long long) s->conn, gw_role_name (s->role), s->name ? s->name : "-",
              dropped);
    gw_sessions_remove (self->sessions, s->conn);
}

// ---------------------------------------------------------------------------
//  The cron's chores

static void
s_register_timeouts (gw_core_t *self, int64_t now)
{
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (s->state == GW_STATE_NEW && !s->closing
            && now - s->connected_ms >= self->cfg.register_timeout_ms) {
            gw_metrics_inc (self->metrics, GW_M_LIMITS, "register_timeout");
            log_debug ("registration timeout conn=%llu", (unsigned long long) s->conn);
            gw_core_close (self, s, GW_CLOSE_POLICY, "registration timeout");
        }
    zlistx_destroy (&list);
}

//  During a shutdown: close everyone once nothing is in flight (or the
//  bound passed); true once they are gone or had their time
static bool
s_quit_progress (gw_core_t *self, int64_t now)
{
    if (!self->goodbye_sent) {
        size_t busy = 0;
        zlistx_t *list = gw_sessions_list (self->sessions);
        for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
             s = (gw_session_t *) zlistx_next (list))
            if (s->role == GW_ROLE_PEER && !s->closing)
                busy += gw_session_assigned (s);
        bool idle = gw_pending_size (self->pending) == 0 && busy == 0;
        if (!idle && now < self->quit_deadline_ms) {
            zlistx_destroy (&list);
            return false;
        }
        log_info ("closing sessions=%zu pending=%zu peer_tasks=%zu",
                  gw_sessions_size (self->sessions), gw_pending_size (self->pending), busy);
        for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
             s = (gw_session_t *) zlistx_next (list)) {
            gw_session_close (s, GW_CLOSE_GOING_AWAY, "going away: gateway shutting down");
            self->io.wake (self->io.arg, s, GW_WAKE_WRITE);
        }
        zlistx_destroy (&list);
        self->goodbye_sent = true;
        self->goodbye_ms = now;
    }
    return gw_sessions_size (self->sessions) == 0 || now - self->goodbye_ms >= GW_CLOSE_WAIT_MS;
}

bool
gw_core_cron (gw_core_t *self, int64_t now_ms)
{
    self->now_ms = now_ms;
    gw_register_timeouts (self, now_ms);
    gw_tasks_guard (self, now_ms);
    gw_subscribe_cron (self, now_ms);
    if (now_ms - self->last_slow_ms >= GW_SLOW_CRON_MS) {
        self->last_slow_ms = now_ms;
        s_register_timeouts (self, now_ms);
        gw_earnings_timeouts (self, now_ms);
        gw_register_rechecks (self, now_ms);
        gw_authcache_sweep (self->authcache, now_ms);
        gw_iplimit_sweep (self->iplimit, now_ms);
    }
    return self->quitting && s_quit_progress (self, now_ms);
}

// ---------------------------------------------------------------------------
//  Life cycle and figures

gw_core_t *
gw_core_new (const gw_core_config_t *config, const gw_core_io_t *io)
{
    assert (config && io && io->send && io->wake && io->services);
    gw_core_t *self = (gw_core_t *) zmalloc (sizeof (gw_core_t));
    self->cfg = *config;
    self->io = *io;
    self->node_id = p2c_strdup (config->node_id ? config->node_id : "");
    self->region = p2c_strdup (config->region ? config->region : "");
    self->cfg.node_id = self->node_id;
    self->cfg.region = self->region;
    self->input.max = config->max_input_bytes;
    self->metrics = gw_metrics_new ();
    self->iplimit = gw_iplimit_new (config->max_conns_per_ip, config->connect_rate,
                                    config->connect_burst);
    self->authcache = gw_authcache_new (config->auth_cache_ms);
    self->sessions = gw_sessions_new ();
    self->pending = gw_pending_new ();
    self->taskids = gw_taskid_new ();
    if (!self->taskids) {
        log_warn ("no randomness for task ids");
        gw_core_destroy (&self);
        return NULL;
    }
    return self;
}

void
gw_core_destroy (gw_core_t **self_p)
{
    gw_core_t *self = *self_p;
    if (!self)
        return;
    gw_sessions_destroy (&self->sessions);
    gw_pending_destroy (&self->pending);
    gw_metrics_destroy (&self->metrics);
    gw_iplimit_destroy (&self->iplimit);
    gw_authcache_destroy (&self->authcache);
    gw_taskid_destroy (&self->taskids);
    free (self->node_id);
    free (self->region);
    free (self);
    *self_p = NULL;
}

void
gw_core_quit (gw_core_t *self, int64_t deadline_ms)
{
    self->quitting = true;
    self->quit_deadline_ms = deadline_ms;
}

bool
gw_core_quitting (gw_core_t *self)
{
    return self->quitting;
}

gw_session_t *
gw_core_session (gw_core_t *self, uint64_t conn)
{
    return gw_sessions_lookup (self->sessions, conn);
}

size_t
gw_core_sessions (gw_core_t *self)
{
    return gw_sessions_size (self->sessions);
}

void
gw_core_role_counts (gw_core_t *self, size_t *none, size_t *peers, size_t *gamers)
{
    *none = *peers = *gamers = 0;
    zlistx_t *list = gw_sessions_list (self->sessions);
    for (gw_session_t *s = (gw_session_t *) zlistx_first (list); s;
         s = (gw_session_t *) zlistx_next (list))
        if (s->state != GW_STATE_REGISTERED)
            (*none)++;
        else
        if (s->role == GW_ROLE_PEER)
            (*peers)++;
        else
            (*gamers)++;
    zlistx_destroy (&list);
}

size_t
gw_core_input_held (gw_core_t *self)
{
    return self->input.used;
}

size_t
gw_core_pending (gw_core_t *self)
{
    return gw_pending_size (self->pending);
}

size_t
gw_core_auth_keys (gw_core_t *self)
{
    return gw_authcache_size (self->authcache);
}

const char *
gw_core_node_id (gw_core_t *self)
{
    return self->node_id;
}

const char *
gw_core_task_prefix (gw_core_t *self)
{
    return gw_taskid_prefix (self->taskids);
}

gw_metrics_t *
gw_core_metrics (gw_core_t *self)
{
    return self->metrics;
}

gw_core_counters_t *
gw_core_counters (gw_core_t *self)
{
    return &self->counters;
}
// ---------------------------------------------------------------------------
//  Self-test: the core's own rules (limits, bad frames, dialects, the
//  send queue, connections, shutdown); registration and tasks are tested
//  in gw_register.c and gw_tasks.c

//  The oldest reply queued to s is an error with this code (freed)
static bool
s_error_is (gw_session_t *s, const char *code)
{
    P2c2r__ServerMessage *m = gw_fake_reply (s);
    bool ok = m && m->msg_case == P2C2R__SERVER_MESSAGE__MSG_ERROR && !strcmp (m->error->code, code);
    p2c_msg_server_free (&m);
    return ok;
}

static void
s_test_connections (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    //  Two connections per address; the third is refused with a reason
    gw_session_t *a = gw_core_open (core, NULL, "192.0.2.1", 1000);
    gw_session_t *b = gw_core_open (core, NULL, "192.0.2.1", 1000);
    gw_session_t *c = gw_core_open (core, NULL, "192.0.2.1", 1000);
    P2C_CHECK (a && b && c && a->conn != b->conn && b->conn != c->conn);
    P2C_CHECK (!a->closing && !b->closing);
    P2C_CHECK (c->closing && c->close_code == GW_CLOSE_TRY_LATER
               && strstr (c->close_reason, "too many connections"));
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "conns_per_ip") == 1);
    //  ... and the next from there is refused before its handshake
    P2C_CHECK (!gw_core_may_connect (core, "192.0.2.1", 1000));
    P2C_CHECK (gw_core_may_connect (core, "192.0.2.99", 1000));
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "conns_per_ip") == 2);
    P2C_CHECK (gw_core_sessions (core) == 3);
    P2C_CHECK (gw_core_session (core, b->conn) == b);
    //  A closed connection frees its place at the address
    gw_core_closed (core, c, 1000);
    gw_core_closed (core, a, 1000);
    gw_session_t *d = gw_core_open (core, NULL, "192.0.2.1", 1000);
    P2C_CHECK (d && !d->closing);
    P2C_CHECK (gw_core_sessions (core) == 2);
    size_t none, peers, gamers;
    gw_core_role_counts (core, &none, &peers, &gamers);
    P2C_CHECK (none == 2 && peers == 0 && gamers == 0);

    //  Not registered within register_timeout_ms: closed by the slow cron
    gw_session_t *g = gw_fake_register (fake, GW_ROLE_GAMER, "g1", 7, 1000);
    gw_core_role_counts (core, &none, &peers, &gamers);
    P2C_CHECK (none == 2 && gamers == 1);
    P2C_CHECK (!gw_core_cron (core, 5000));
    P2C_CHECK (!b->closing && !d->closing);
    gw_core_cron (core, 11000);
    P2C_CHECK (b->closing && b->close_code == GW_CLOSE_POLICY
               && !strcmp (b->close_reason, "registration timeout"));
    P2C_CHECK (d->closing);
    P2C_CHECK (!g->closing);
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "register_timeout") == 2);
    //  A client silent past the ping and pong time counts as idle
    gw_core_closed (core, g, 1000 + 60000);
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "idle_timeout") == 1);
    gw_fake_destroy (&fake);
    gw_fake_destroy (&fake);
}

static void
s_test_bad_frames (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    gw_session_t *s = gw_core_open (core, NULL, "192.0.2.2", 0);
    //  Garbage gets an error and changes nothing; a good frame between
    //  resets the count of bad ones in a row
    const uint8_t junk [] = { 0xff, 0xff, 0xff, 0x01 };
    gw_core_message (core, s, junk, sizeof junk, true, 10);
    P2C_CHECK (s_error_is (s, "bad_request"));
    P2C_CHECK (s->dialect == GW_DIALECT_PROTOBUF && s->bad_in_row == 1);
    P2c2r__Heartbeat hb = P2C2R__HEARTBEAT__INIT;
    P2c2r__ClientMessage m = P2C2R__CLIENT_MESSAGE__INIT;
    m.msg_case = P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT;
    m.heartbeat = &hb;
    gw_fake_client (fake, s, &m, 20);       //  before registration: bad too
    P2C_CHECK (s_error_is (s, "bad_request"));
    P2C_CHECK (s->bad_in_row == 2 && !s->closing);
    //  max_bad_frames (3) in a row: closed with 1008
    gw_core_message (core, s, junk, sizeof junk, true, 30);
    P2C_CHECK (s_error_is (s, "bad_request"));
    P2C_CHECK (s->closing && s->close_code == GW_CLOSE_POLICY
               && !strcmp (s->close_reason, "too many bad frames"));
    P2C_CHECK (core->counters.bad_frames == 3);
    //  A closing connection's further frames are not even read
    gw_core_receive (core, s, junk, sizeof junk, 0, true, true, 40);
    P2C_CHECK (gw_session_queued (s) == 0);

    //  A message over max_frame found at its last piece: one too_large
    //  answer, and the connection goes on
    gw_session_t *t = gw_core_open (core, NULL, "192.0.2.3", 0);
    uint8_t *big = (uint8_t *) zmalloc (4000);
    gw_core_receive (core, t, big, 4000, 0, false, true, 50);
    P2C_CHECK (gw_session_queued (t) == 0);
    gw_core_receive (core, t, big, 1000, 0, true, true, 50);
    P2C_CHECK (s_error_is (t, "too_large"));
    P2C_CHECK (gw_session_queued (t) == 0 && !t->closing);
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "frame_too_large") == 1);
    //  One whose header announces more (up to 2^62 bytes): answered at
    //  once, holding nothing for it; what follows is dropped unanswered
    gw_session_t *u = gw_core_open (core, NULL, "192.0.2.4", 0);
    gw_core_receive (core, u, big, 10, (size_t) 1 << 62, false, true, 55);
    P2C_CHECK (s_error_is (u, "too_large"));
    P2C_CHECK (!u->closing && p2c_frame_held (u->rx) <= 4096);
    gw_core_receive (core, u, big, 4000, ((size_t) 1 << 62) - 4010, false, true, 56);
    P2C_CHECK (gw_session_queued (u) == 0 && p2c_frame_held (u->rx) <= 4096);
    free (big);
    //  ... while one in two pieces under it is handled once whole
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_client (&m, 0, &len);
    gw_core_receive (core, t, buf, 1, len - 1, false, true, 60);
    P2C_CHECK (gw_session_queued (t) == 0);
    gw_core_receive (core, t, buf + 1, len - 1, 0, true, true, 60);
    P2C_CHECK (s_error_is (t, "bad_request"));   //  a heartbeat, not registered
    free (buf);
    gw_fake_destroy (&fake);

    //  The input budget across sessions: three hold 3 KB each of an
    //  unfinished message under a budget of 8 KB; the third is closed with
    //  1013 and an unavailable error, and the held bytes stay in budget
    gw_core_config_t config = gw_fake_config ();
    config.max_input_bytes = 8192;
    config.max_conns_per_ip = 10;
    fake = gw_fake_new (&config);
    core = fake->core;
    uint8_t piece [3000];
    memset (piece, 'x', sizeof piece);
    gw_session_t *v [3];
    for (int i = 0; i < 3; i++) {
        v [i] = gw_core_open (core, NULL, "192.0.2.5", 100);
        gw_core_receive (core, v [i], piece, sizeof piece, 0, false, true, 100);
    }
    P2C_CHECK (!v [0]->closing && !v [1]->closing);
    P2C_CHECK (v [2]->closing && v [2]->close_code == GW_CLOSE_TRY_LATER);
    P2C_CHECK (s_error_is (v [2], "unavailable"));
    P2C_CHECK (gw_core_input_held (core) <= 8192);
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "input_budget") == 1);
    //  A closed session gives its bytes back
    size_t held = gw_core_input_held (core);
    gw_core_closed (core, v [0], 200);
    P2C_CHECK (gw_core_input_held (core) < held);
    gw_fake_destroy (&fake);
}

static void
s_test_rate_and_dialect (void)
{
    gw_core_config_t config = gw_fake_config ();
    config.rate_msgs = 1;
    config.rate_burst = 3;
    gw_fake_t *fake = gw_fake_new (&config);
    gw_core_t *core = fake->core;
    //  (time 0 would mean a bucket never used)
    //  A text frame fixes the JSON dialect: answers are JSON text
    gw_session_t *s = gw_core_open (core, NULL, "192.0.2.4", 1000);
    const char *reg = "{\"type\":\"register_gamer\",\"gamer_id\":\"j1\"}";
    gw_core_message (core, s, (const uint8_t *) reg, strlen (reg), false, 1000);
    P2C_CHECK (s->dialect == GW_DIALECT_JSON && s->state == GW_STATE_AUTHING);
    P2c2r__Internal *req = gw_fake_msg (fake, fake->sent - 1);
    P2C_CHECK (req && req->msg_case == P2C2R__INTERNAL__MSG_AUTH_REQUEST);
    P2c2r__AuthReply ar = P2C2R__AUTH_REPLY__INIT;
    ar.corr = req ? req->auth_request->corr : 0;
    ar.ok = true;
    ar.account_id = 5;
    P2c2r__Internal reply = P2C2R__INTERNAL__INIT;
    reply.msg_case = P2C2R__INTERNAL__MSG_AUTH_REPLY;
    reply.auth_reply = &ar;
    gw_fake_internal (fake, &reply, 1000);
    gw_outframe_t *f = gw_session_pop (s);
    P2C_CHECK (f && !f->binary && f->pre == config.pre);
    if (f) {
        json_t *obj = json_loadb ((const char *) f->buf + f->pre, f->len, 0, NULL);
        P2C_CHECK (obj && !strcmp (json_string_value (json_object_get (obj, "type")),
                                   "registered"));
        json_decref (obj);
    }
    gw_outframe_destroy (&f);
    //  Over the rate (burst 3, the registration was one): a submit gets
    //  its one terminal reply, rate_limited; in a row they close
    const char *sub = "{\"type\":\"submit_task\",\"task\":{\"type\":\"hash\",\"data\":{}},"
                      "\"client_ref\":\"r\"}";
    gw_core_message (core, s, (const uint8_t *) sub, strlen (sub), false, 1000);
    gw_core_message (core, s, (const uint8_t *) sub, strlen (sub), false, 1000);
    P2C_CHECK (gw_core_pending (core) == 2);
    size_t sent = fake->sent;
    for (int i = 0; i < 3; i++)
        gw_core_message (core, s, (const uint8_t *) sub, strlen (sub), false, 1000);
    P2C_CHECK (fake->sent == sent);
    P2C_CHECK (gw_core_pending (core) == 2);
    P2C_CHECK (gw_session_queued (s) == 3);
    f = gw_session_pop (s);
    P2C_CHECK (f && !f->binary);
    if (f) {
        json_t *obj = json_loadb ((const char *) f->buf + f->pre, f->len, 0, NULL);
        P2C_CHECK (obj && !strcmp (json_string_value (json_object_get (obj, "code")),
                                   "rate_limited"));
        P2C_CHECK (obj && !strcmp (json_string_value (json_object_get (obj, "client_ref")), "r"));
        json_decref (obj);
    }
    gw_outframe_destroy (&f);
    P2C_CHECK (s->closing && !strcmp (s->close_reason, "rate limit exceeded"));
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "rate_limited") == 3);
    gw_fake_destroy (&fake);
}

static void
s_test_send_queue (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    gw_session_t *p = gw_fake_register (fake, GW_ROLE_PEER, "p1", 9, 0);
    //  A peer that reads nothing: 16 frames queue, the 17th drops it
    P2c2r__Session sess = P2C2R__SESSION__INIT;
    sess.gateway = "gateway-test";
    sess.conn = p->conn;
    P2c2r__Assign as = P2C2R__ASSIGN__INIT;
    P2c2r__TaskAssign ta = P2C2R__TASK_ASSIGN__INIT;
    ta.peer = &sess;
    ta.assign = &as;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_TASK_ASSIGN;
    m.task_assign = &ta;
    char id [32];
    for (int i = 0; i < 17; i++) {
        snprintf (id, sizeof id, "t%d", i);
        as.task_id = id;
        gw_fake_internal (fake, &m, 0);
    }
    P2C_CHECK (p->closing && p->close_code == GW_CLOSE_POLICY
               && !strcmp (p->close_reason, "slow consumer: send queue full"));
    P2C_CHECK (gw_session_queued (p) == 0);
    P2C_CHECK (fake->cuts == 1);
    P2C_CHECK (gw_metrics_get (core->metrics, GW_M_LIMITS, "send_queue") == 1);
    gw_fake_destroy (&fake);
}

static void
s_test_quit (void)
{
    gw_fake_t *fake = gw_fake_new (NULL);
    gw_core_t *core = fake->core;
    gw_session_t *g = gw_fake_register (fake, GW_ROLE_GAMER, "g1", 7, 0);
    P2c2r__Submit sub = P2C2R__SUBMIT__INIT;
    sub.task_type = "hash";
    sub.client_ref = "r1";
    sub.deadline_ms = 5000;
    P2c2r__ClientMessage m = P2C2R__CLIENT_MESSAGE__INIT;
    m.msg_case = P2C2R__CLIENT_MESSAGE__MSG_SUBMIT;
    m.submit = &sub;
    gw_fake_client (fake, g, &m, 0);
    P2C_CHECK (gw_core_pending (core) == 1);
    gw_core_quit (core, 2000);
    P2C_CHECK (gw_core_quitting (core));
    //  No new work: a submit gets unavailable, a new connection going away
    gw_fake_client (fake, g, &m, 100);
    P2c2r__ServerMessage *r = gw_fake_reply (g);
    P2C_CHECK (r && r->msg_case == P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT
               && !strcmp (r->task_result->error_code, "unavailable"));
    p2c_msg_server_free (&r);
    gw_session_t *late = gw_core_open (core, NULL, "192.0.2.9", 100);
    P2C_CHECK (late->closing && late->close_code == GW_CLOSE_GOING_AWAY);
    //  A task in flight holds the goodbye until the drain bound
    P2C_CHECK (!gw_core_cron (core, 1000));
    P2C_CHECK (!g->closing);
    P2C_CHECK (!gw_core_cron (core, 2000));
    P2C_CHECK (g->closing && g->close_code == GW_CLOSE_GOING_AWAY);
    //  Done once everyone left, or GW_CLOSE_WAIT_MS after the goodbye
    gw_core_closed (core, late, 2100);
    P2C_CHECK (!gw_core_cron (core, 2100));
    P2C_CHECK (gw_core_cron (core, 2000 + GW_CLOSE_WAIT_MS));
    gw_core_closed (core, g, 3600);
    P2C_CHECK (gw_core_pending (core) == 0);        //  the gamer's task went with it
    P2C_CHECK (gw_core_cron (core, 3700));
    gw_fake_destroy (&fake);
}

void
gw_core_test (bool verbose)
{
    (void) verbose;
    P2C_CHECK (gw_valid_id ("laptop-1"));
    P2C_CHECK (gw_valid_id ("a"));
    P2C_CHECK (!gw_valid_id (""));
    P2C_CHECK (!gw_valid_id (NULL));
    P2C_CHECK (!gw_valid_id ("has space"));
    P2C_CHECK (!gw_valid_id ("tab\there"));
    P2C_CHECK (!gw_valid_id ("caf\xc3\xa9"));
    char id [GW_MAX_ID + 2];
    memset (id, 'x', sizeof id);
    id [GW_MAX_ID] = 0;
    P2C_CHECK (gw_valid_id (id));
    id [GW_MAX_ID] = 'x';
    id [GW_MAX_ID + 1] = 0;
    P2C_CHECK (!gw_valid_id (id));

    s_test_connections ();
    s_test_bad_frames ();
    s_test_rate_and_dialect ();
    s_test_send_queue ();
    s_test_quit ();
}
