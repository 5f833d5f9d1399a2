/*  `p2c2r-ctl alerts`: the server's own alerts as the scheduler evaluates
    them (scheduler/sch_alerts.c), asked over the bus with a StatsRequest
    (p2c_auth lets ctl ask the scheduler, and only it). No database. */
#include "ctl.h"
#include "p2c_node.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <czmq.h>
#include <time.h>

//  How long we wait for the broker's view before deciding no scheduler is there
#define CTL_NO_SCHEDULER_MS 1500

//  "2026-12-02T15:04:05Z" of a unix time, or "-"
static void
s_iso (json_t *since, char *buf, size_t size)
{
    time_t t = (time_t) json_integer_value (since);
    struct tm tm;
    if (!json_is_integer (since) || !gmtime_r (&t, &tm)
        || !strftime (buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf (buf, size, "-");
}

size_t
ctl_alerts_print (json_t *stats, FILE *f)
{
    json_t *alerts = json_object_get (stats, "alerts");
    size_t firing = 0, shown = 0, i;
    json_t *a;
    json_array_foreach (alerts, i, a) {
        const char *state = json_string_value (json_object_get (a, "state"));
        const char *name = json_string_value (json_object_get (a, "name"));
        if (!state || !name || (strcmp (state, "firing") && strcmp (state, "pending")))
            continue;
        if (!shown++)
            fprintf (f, "%-16s %-8s %-20s %12s %12s  %s\n", "alert", "state", "since", "value",
                     "threshold", "summary");
        firing += !strcmp (state, "firing");
        char since [32];
        s_iso (json_object_get (a, "since"), since, sizeof since);
        const char *summary = json_string_value (json_object_get (a, "summary"));
        const char *detail = json_string_value (json_object_get (a, "detail"));
        //  names and texts come from our scheduler; printed with a bound
        fprintf (f, "%-16.32s %-8s %-20s %12g %12g  %.120s%s%.60s%s\n", name, state,
                 !strcmp (state, "firing") ? since : "-",
                 json_number_value (json_object_get (a, "value")),
                 json_number_value (json_object_get (a, "threshold")), summary ? summary : "",
                 detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
    }
    if (!shown)
        fprintf (f, "no alert firing (%zu rules evaluated)\n", json_array_size (alerts));
    return firing;
}

//  Sends a StatsRequest to the scheduler and waits for its figures
static json_t *
s_ask (p2c_node_t *node, const char *broker, int64_t timeout_ms)
{
    uint64_t corr = ((uint64_t) randof (0x7fffffff) << 20) ^ (uint64_t) p2c_now_us ();
    P2c2r__StatsRequest req = P2C2R__STATS_REQUEST__INIT;
    req.corr = corr;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_STATS_REQUEST;
    msg.stats_request = &req;
    json_t *stats = NULL;
    bool sent = false;
    int64_t start = p2c_now_ms ();
    zpoller_t *poller = zpoller_new (p2c_node_sock (node), NULL);
    while (!stats && !zsys_interrupted && p2c_now_ms () - start < timeout_ms) {
        //  the broker names the nodes right after our hello
        if (!sent && p2c_node_service_count (node, "scheduler") > 0) {
            p2c_node_send (node, "scheduler", &msg);
            sent = true;
        }
        if (!sent && p2c_now_ms () - start >= CTL_NO_SCHEDULER_MS
            && p2c_node_broker_alive (node))
            break;
        zpoller_wait (poller, sent ? 100 : 10);
        p2c_node_cron (node);
        char *sender = NULL;
        P2c2r__Internal *got;
        while (!stats && (got = p2c_node_recv (node, &sender))) {
            if (got->msg_case == P2C2R__INTERNAL__MSG_STATS_REPLY && got->stats_reply
                && got->stats_reply->corr == corr && got->stats_reply->stats_json) {
                stats = json_loads (got->stats_reply->stats_json, 0, NULL);
                if (!json_is_object (stats)) {
                    json_decref (stats);
                    stats = json_object ();
                }
            }
            p2c_msg_internal_free (&got);
            zstr_free (&sender);
        }
    }
    zpoller_destroy (&poller);
    if (!stats)
        fprintf (stderr, "p2c2r-ctl: %s %s within %lld ms\n",
                 sent ? "no answer from the scheduler through the broker"
                 : p2c_node_broker_alive (node) ? "no scheduler is connected to the broker"
                 : "no answer from the broker (is it running?)", broker,
                 (long long) timeout_ms);
    return stats;
}

int
ctl_alerts (const char *broker, int64_t timeout_ms, bool json)
{
    p2c_node_t *node = ctl_bus_node (broker);
    if (!node)
        return CTL_EXIT_ERROR;
    json_t *stats = s_ask (node, broker, timeout_ms);
    p2c_node_destroy (&node);
    if (!stats)
        return CTL_EXIT_ERROR;
    size_t firing = 0;
    if (json) {
        json_t *alerts = json_object_get (stats, "alerts");
        size_t i;
        json_t *a;
        json_array_foreach (alerts, i, a) {
            const char *state = json_string_value (json_object_get (a, "state"));
            firing += state && !strcmp (state, "firing");
        }
        ctl_print_json (alerts ? alerts : json_array ());
    }
    else
        firing = ctl_alerts_print (stats, stdout);
    json_decref (stats);
    return firing ? CTL_EXIT_VIOLATION : CTL_EXIT_OK;
}

void
ctl_alerts_test (bool verbose)
{
    (void) verbose;
    json_t *stats = json_loads ("{\"alerts\":[{\"name\":\"peers_low\",\"state\":\"firing\","
                                "\"since\":1700000000,\"value\":0,\"threshold\":2,"
                                "\"summary\":\"few\"},{\"name\":\"latency_high\",\"state\":\"ok\","
                                "\"since\":null,\"value\":3,\"threshold\":5000}]}", 0, NULL);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    P2C_CHECK (ctl_alerts_print (stats, f) == 1);
    fclose (f);
    P2C_CHECK (strstr (text, "peers_low") && strstr (text, "2023-11-14T22:13:20Z")
               && strstr (text, "firing") && !strstr (text, "latency_high"));
    free (text);
    json_decref (stats);
    stats = json_loads ("{\"alerts\":[]}", 0, NULL);
    f = open_memstream (&text, &size);
    P2C_CHECK (ctl_alerts_print (stats, f) == 0);
    fclose (f);
    P2C_CHECK (strstr (text, "no alert firing"));
    free (text);
    json_decref (stats);
    //  no broker: an error, after the timeout
    P2C_CHECK (ctl_alerts ("tcp://127.0.0.1:1", 500, false) == CTL_EXIT_ERROR);
}
