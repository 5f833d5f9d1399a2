/*  Draining an edge-triggered socket (see p2c_drain.h). */
#include "p2c_drain.h"
#include "p2c_test.h"

#include <czmq.h>
#include <poll.h>

bool
p2c_drain (void *handle, size_t budget, p2c_drain_fn *fn, void *arg)
{
    assert (handle && fn);
    for (size_t served = 0; served < budget; served++) {
        zmq_msg_t parts [P2C_DRAIN_PARTS];
        size_t n = 0;
        bool more = true;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init (&part);
            //  The parts of a message arrive together: only the first waits
            if (zmq_msg_recv (&part, handle, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close (&part);
                if (n == 0)
                    return false;   //  drained
                break;
            }
            more = zmq_msg_more (&part);
            if (n < P2C_DRAIN_PARTS)
                parts [n] = part;
            else
                zmq_msg_close (&part);
            n++;
        }
        fn (arg, parts, n);
        for (size_t i = 0; i < n && i < P2C_DRAIN_PARTS; i++)
            zmq_msg_close (&parts [i]);
    }
    return true;
}

//  Self-test: counts the messages and their parts it is handed
typedef struct {
    size_t messages;
    size_t parts;
    size_t longest;
} s_tally_t;

static void
s_tally (void *arg, zmq_msg_t *parts, size_t nparts)
{
    s_tally_t *t = (s_tally_t *) arg;
    t->messages++;
    t->parts += nparts;
    if (nparts > t->longest)
        t->longest = nparts;
    //  the parts are whole and in order
    for (size_t i = 0; i < nparts && i < P2C_DRAIN_PARTS; i++)
        P2C_CHECK (zmq_msg_size (&parts [i]) == 1
                   && *(char *) zmq_msg_data (&parts [i]) == (char) ('a' + i));
}

static void
s_send_parts (zsock_t *sock, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = (char) ('a' + i);
        zmq_send (zsock_resolve (sock), &c, 1, i + 1 < n ? ZMQ_SNDMORE : 0);
    }
}

void
p2c_drain_test (bool verbose)
{
    (void) verbose;
    zsock_t *in = zsock_new_pair ("@inproc://p2c-drain-test");
    zsock_t *out = zsock_new_pair (">inproc://p2c-drain-test");
    P2C_CHECK (in && out);
    if (!in || !out) {
        zsock_destroy (&in);
        zsock_destroy (&out);
        return;
    }
    void *handle = zsock_resolve (in);
    s_tally_t t = { 0, 0, 0 };
    //  Nothing waiting: drained at once, and nothing handed over
    P2C_CHECK (!p2c_drain (handle, 10, s_tally, &t) && t.messages == 0);

    //  Five messages of one to three parts, and one longer than the parts
    //  handed over: a budget of three stops with messages left
    s_send_parts (out, 1);
    s_send_parts (out, 2);
    s_send_parts (out, 3);
    s_send_parts (out, 1);
    s_send_parts (out, P2C_DRAIN_PARTS + 2);
    s_send_parts (out, 2);
    P2C_CHECK (p2c_drain (handle, 3, s_tally, &t));
    P2C_CHECK (t.messages == 3 && t.parts == 6);
    //  The rest, until the socket is empty; the long one counted whole
    P2C_CHECK (!p2c_drain (handle, 100, s_tally, &t));
    P2C_CHECK (t.messages == 6 && t.parts == 6 + 1 + P2C_DRAIN_PARTS + 2 + 2);
    P2C_CHECK (t.longest == P2C_DRAIN_PARTS + 2);

    //  After a drain to empty, the descriptor signals the next arrival
    struct pollfd item = { zsock_fd (in), POLLIN, 0 };
    s_send_parts (out, 2);
    P2C_CHECK (poll (&item, 1, 2000) == 1);
    P2C_CHECK (!p2c_drain (handle, 100, s_tally, &t) && t.messages == 7);
    zsock_destroy (&out);
    zsock_destroy (&in);
}
