/*  The agent's settings, one table per subcommand (peer, gamer, bench and
    the internal worker), each binding its options to the fields of a
    struct with their defaults, bounds and help (p2c_cfg). peer and gamer
    share the connection's entries. A subcommand parses with
    p2c_cfg_parse (&agt_config_peer, &cfg, ...) and frees with
    p2c_cfg_free (agt_config_peer.table, &cfg); a test starts from the same
    defaults with agt_peer_config_defaults (&cfg). */
#ifndef AGT_CONFIG_H_INCLUDED
#define AGT_CONFIG_H_INCLUDED

#include "p2c_cfg.h"

#include <stdbool.h>
#include <stdint.h>

//  How peer and gamer reach the gateway
typedef struct {
    char *server;               //  ws://HOST[:PORT] or wss://HOST[:PORT]
    char *ca;                   //  wss://: CA file ("": the system's store)
    bool insecure;              //  wss://: accept any certificate (development)
    bool allow_insecure_ws;     //  send the API key over ws:// to a non-loopback host
    char *cloud_ip;             //  the original demo's flag; overrides server
    int cloud_port;             //  with cloud_ip
    char *api_key;              //  secret; "" under open registration
} agt_conn_config_t;

typedef struct {
    agt_conn_config_t conn;
    char *peer_id;              //  "": hostname-pid
    char *region;               //  for same-region scheduling
    int slots;                  //  tasks at once (0: the online cores)
    int queue;                  //  tasks advertised per worker process (0: adapted, agt_depth)
    int mem_mb;                 //  address space limit of a worker, MiB
    int64_t task_timeout_ms;    //  limit of a task whose assignment gives no deadline
    bool log_tasks;             //  every completed task at info
    bool list_kernels;          //  print the kernels and exit
    bool no_bench;              //  advertise no speeds
    bool sandbox;               //  kernels under the seccomp filter (agt_sandbox.h)
    char *worker_user;          //  the account kernels run as when the agent is root
    char *prefs [8];            //  the owner's preferences as text, in agt_prefs_names'
                                //  order (agt_prefs_set checks them)
    char *control;              //  the local control socket ("": the default; off: none)
    char *state_dir;            //  where the counters of work done are kept ("": default)
    char *proc_root;            //  where processes, input and load are read
    char *sys_root;             //  where the power supply is read
} agt_peer_config_t;

typedef struct {
    agt_conn_config_t conn;
    char *gamer_id;             //  "": player-hostname-pid
    char *task;                 //  task type ("": the menu, on a terminal)
    char *params;               //  JSON object; "{i}" becomes the task's index
    char *payload_file;         //  binary input sent with every task
    int count;                  //  tasks in all
    int concurrency;            //  tasks outstanding at once
    uint32_t deadline_ms;       //  per task (0: the server's default)
    int64_t timeout_s;          //  bound on the whole run
    bool json;                  //  one JSON object per reply
    bool quiet;                 //  only the summary
    char *out_dir;              //  where binary results are saved ("": nowhere)
    char *run_id;               //  prefix of the run's client_refs ("": random)
    bool resubmit;              //  reconnect and resubmit lost tasks by client_ref
} agt_gamer_config_t;

typedef struct {
    int runs;                   //  of each kernel (the median is shown)
    char *kernel;               //  only this one ("": all)
    bool json;
} agt_bench_config_t;

typedef struct {
    int fd;                     //  the socket to the agent
    int mem_mb;                 //  address space limit, MiB
    bool sandbox;               //  seccomp filter and limits (agt_sandbox.h)
    char *user;                 //  the account kernels run as when the agent is root
} agt_worker_config_t;

extern const p2c_cfg_spec_t agt_config_peer;
extern const p2c_cfg_spec_t agt_config_gamer;
extern const p2c_cfg_spec_t agt_config_bench;
extern const p2c_cfg_spec_t agt_config_worker;

//  Every setting's default, without parsing; free with p2c_cfg_free
void agt_peer_config_defaults (agt_peer_config_t *self);
void agt_gamer_config_defaults (agt_gamer_config_t *self);
void agt_bench_config_defaults (agt_bench_config_t *self);
void agt_worker_config_defaults (agt_worker_config_t *self);
//  Frees what a mode's settings hold (as p2c_cfg_free on its table)
void agt_peer_config_free (agt_peer_config_t *self);
void agt_gamer_config_free (agt_gamer_config_t *self);
void agt_bench_config_free (agt_bench_config_t *self);
void agt_worker_config_free (agt_worker_config_t *self);

void agt_config_test (bool verbose);

#endif
