-- P2C2R ledger schema, version 4: settlement in one statement that checks
-- its own rows, and journal checks whose plans are index lookups.
--
-- ledger_settle settles a batch in one call, so that the ledger pays one
-- round trip and one commit per batch (it runs in autocommit: the call is
-- its own transaction). The ledger computes the amounts (p2c_money_split in
-- C is the one rounding rule) at the rates row it believes in force and
-- passes that row's id; under the share lock that orders settlements with a
-- rates change, the function checks that this row is still the one in
-- force, else writes nothing and answers the row in force so that the
-- ledger computes again. Rates rows never change, so the same id means the
-- same rates.
--
-- The checks of version 2's statement triggers are rewritten as per-row
-- subqueries (SubPlans: an index lookup per distinct transaction, account
-- or rate of the statement) instead of joins, which the planner may turn
-- into hash joins over a sequential scan of journal_tx or accounts, whose
-- cost grows with the whole history rather than the batch. They check the
-- same rules.

CREATE OR REPLACE FUNCTION journal_entries_check () RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
-- Few statements: each costs an executor start and end, more than the
-- work itself for a small batch
DECLARE
    bad TEXT;
    ids BIGINT [];
    deltas BIGINT [];
    txs BIGINT [];
    found INT;
    found_txs INT;
BEGIN
    -- Each statement's entries of a transaction sum to zero, so every
    -- transaction's entries, the sum of its statements', do too. Also what
    -- each account moves by, and the transactions named.
    SELECT (SELECT format ('journal transaction %s does not balance: sum %s picodollars',
                           tx_id, SUM (amount_pico))
              FROM new_entries GROUP BY tx_id HAVING SUM (amount_pico) <> 0 LIMIT 1),
           d.ids, d.deltas, (SELECT array_agg (DISTINCT tx_id) FROM new_entries)
      INTO bad, ids, deltas, txs
      FROM (SELECT array_agg (account_id) AS ids, array_agg (delta) AS deltas
              FROM (SELECT account_id, SUM (amount_pico)::BIGINT AS delta
                      FROM new_entries GROUP BY account_id) g) d;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '%', bad USING ERRCODE = 'check_violation';
    END IF;
    -- Rows locked in id order first, so two ledgers committing batches that
    -- touch the same accounts wait for each other instead of deadlocking;
    -- an account that is not there is not locked. One index scan each.
    SELECT (SELECT count (*)
              FROM (SELECT 1 FROM accounts WHERE id = ANY (ids) ORDER BY id FOR UPDATE) l),
           (SELECT count (*) FROM journal_tx WHERE id = ANY (txs))
      INTO found, found_txs;
    IF found <> cardinality (ids) THEN
        SELECT format ('entry for unknown account %s', i.id) INTO bad
          FROM unnest (ids) AS i (id)
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = i.id) LIMIT 1;
        RAISE EXCEPTION '%', bad USING ERRCODE = 'check_violation';
    END IF;
    IF found_txs <> cardinality (txs) THEN
        SELECT format ('entry for unknown transaction %s', i.id) INTO bad
          FROM unnest (txs) AS i (id)
         WHERE NOT EXISTS (SELECT 1 FROM journal_tx j WHERE j.id = i.id) LIMIT 1;
        RAISE EXCEPTION '%', bad USING ERRCODE = 'check_violation';
    END IF;
    -- One row per account, by its index
    UPDATE accounts a SET balance_pico = a.balance_pico + d.delta
      FROM unnest (ids, deltas) AS d (id, delta)
     WHERE a.id = d.id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION tasks_check () RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    bad TEXT;
    found_accounts INT;
    want_accounts INT;
    found_rates INT;
    want_rates INT;
BEGIN
    -- An index lookup per task (tx_id is unique in tasks); one index scan
    -- over the accounts named, one over the rates
    WITH a AS (SELECT DISTINCT v.id
                 FROM new_tasks n, LATERAL (VALUES (n.gamer_account), (n.peer_account)) v (id)),
         r AS (SELECT DISTINCT rate_id AS id FROM new_tasks WHERE rate_id IS NOT NULL)
    SELECT (SELECT format ('task %s: no settle transaction %s of that task', n.task_id, n.tx_id)
              FROM new_tasks n
             WHERE (SELECT j.task_id FROM journal_tx j WHERE j.id = n.tx_id AND j.kind = 'settle')
                   IS DISTINCT FROM n.task_id LIMIT 1),
           (SELECT count (*) FROM accounts WHERE id = ANY (ARRAY (SELECT a.id FROM a))),
           (SELECT count (*) FROM a),
           (SELECT count (*) FROM rates WHERE id = ANY (ARRAY (SELECT r.id FROM r))),
           (SELECT count (*) FROM r)
      INTO bad, found_accounts, want_accounts, found_rates, want_rates;
    IF bad IS NULL AND found_accounts <> want_accounts THEN
        SELECT format ('task %s: unknown account', n.task_id) INTO bad
          FROM new_tasks n
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = n.gamer_account)
            OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = n.peer_account) LIMIT 1;
    END IF;
    IF bad IS NULL AND found_rates <> want_rates THEN
        SELECT format ('task %s: unknown rates %s', n.task_id, n.rate_id) INTO bad
          FROM new_tasks n
         WHERE n.rate_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM rates r WHERE r.id = n.rate_id) LIMIT 1;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '%', bad USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

-- ledger_settle runs with the setting p2c2r.settle_checked = on (its SET
-- clause: PostgreSQL restores the caller's value when it returns or
-- fails, so the setting never outlives the call nor reaches the caller's
-- next statement), and the triggers skip their checks under it. Every other
-- writer (p2c2r-ctl, an operator's SQL, a later function) is checked as
-- before. Why the rows ledger_settle writes keep every rule the triggers
-- check:
--   - a transaction's entries sum to zero: ledger_settle refuses a task
--     whose charge is not earning + fee + treasury share, or, paid by the
--     treasury (gamer 0), has a fee or a treasury share; its entries are
--     -charge, +earning, +fee, +treasury (treasury run: -charge, +earning)
--   - entries and task rows name existing accounts: gamers and peers are
--     looked up with their kind, the fee and treasury accounts are counted,
--     before anything is written; accounts are never deleted
--   - entries and task rows name their own settle transaction: the ids
--     come from the claim's INSERT ... RETURNING of the same statement
--   - the rates row exists: it is the one in force, read under the lock
--   - balances: ledger_settle adds each account's entries itself, after
--     locking the accounts in id order (as the trigger does, so a batch and
--     another writer still wait for each other instead of deadlocking)
-- A session may set p2c2r.settle_checked itself (any user can set a
-- placeholder setting) and insert unchecked rows: that grants nothing to the
-- tables' owner, the one role the ledger and p2c2r-ctl use, which can
-- already ALTER TABLE ... DISABLE TRIGGER. So INSERT on journal_entries and
-- tasks must not be granted to any other role. A trigger added later on a
-- table ledger_settle writes must not write the journal (it would run under
-- the setting).

-- Settles a batch: arrays of one element per task (task ids distinct),
-- gamer 0 for a run the treasury pays (its amounts: charge = earning, no
-- fee, no treasury share). Rows answered (r_n: 1-based position in the
-- arrays):
--   'rates'   the rates row in force is not p_rate_id: nothing written;
--             r_a..r_d = its id (NULL: no rates in force), gamer and peer
--             picodollars per hour, fee in basis points
--   'gamer'   / 'peer': refused, that account is unknown or of another kind
--   'new'     settled now
--   'replay'  settled before: r_a..r_d = stored charge, earning, fee, treasury
--   'balance' a gamer's balance after the batch: r_a = account, r_b =
--             balance, r_c = 1 when disabled
-- A task with none of these was claimed in the journal without a task row.
-- Few statements: the claim, the task rows and the entries in one, the
-- accounts' lock, balance update and the answer in a second.
CREATE FUNCTION ledger_settle (
    p_rate_id BIGINT, p_task_ids TEXT [], p_types TEXT [], p_gamers BIGINT [],
    p_peers BIGINT [], p_billed BIGINT [], p_compute BIGINT [], p_observed BIGINT [],
    p_charge BIGINT [], p_earning BIGINT [], p_fee BIGINT [], p_treasury BIGINT [],
    p_fee_account BIGINT, p_treasury_account BIGINT)
RETURNS TABLE (r_what TEXT, r_n INT, r_a BIGINT, r_b BIGINT, r_c BIGINT, r_d BIGINT)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan
SET p2c2r.settle_checked = 'on' AS $$
-- Every statement reads the arrays whole (unnest), never element by
-- element: a subscript of a text array costs a walk from its start.
DECLARE
    in_force BIGINT;
    bad_gamers BIGINT [];
    bad_peers BIGINT [];
    unbalanced TEXT;
    own_found BOOLEAN;
    new_n BIGINT [];
    replay_n BIGINT [];
    replay_ids TEXT [];
    ids BIGINT [];
    deltas BIGINT [];
BEGIN
    -- The share lock orders us with a rates change (ledger's rates-set takes
    -- SHARE ROW EXCLUSIVE), so a task's settled_at and its rates agree
    LOCK TABLE rates IN SHARE MODE;
    -- The rates in force, the accounts named that do not exist with the
    -- right kind (one lookup per account of the batch), the first task whose
    -- entries would not sum to zero, and whether the fee and treasury
    -- accounts exist
    SELECT (SELECT id FROM rates WHERE effective_at <= now () ORDER BY effective_at DESC LIMIT 1),
           ARRAY (SELECT g.id
                    FROM (SELECT DISTINCT id FROM unnest (p_gamers) AS u (id) WHERE id <> 0) g
                   WHERE (SELECT a.kind FROM accounts a WHERE a.id = g.id)
                         IS DISTINCT FROM 'gamer'),
           ARRAY (SELECT p.id
                    FROM (SELECT DISTINCT id FROM unnest (p_peers) AS u (id)) p
                   WHERE (SELECT a.kind FROM accounts a WHERE a.id = p.id)
                         IS DISTINCT FROM 'peer'),
           (SELECT format ('task %s does not balance: charge %s, earning %s, fee %s, treasury %s',
                           x.t, x.ch, x.ea, x.fe, x.tr)
              FROM unnest (p_task_ids, p_gamers, p_charge, p_earning, p_fee, p_treasury)
                   AS x (t, g, ch, ea, fe, tr)
             WHERE (x.ch = x.ea + x.fe + x.tr AND (x.g <> 0 OR (x.fe = 0 AND x.tr = 0)))
                   IS NOT TRUE
             LIMIT 1),
           EXISTS (SELECT 1 FROM accounts WHERE id = p_fee_account)
           AND EXISTS (SELECT 1 FROM accounts WHERE id = p_treasury_account)
      INTO in_force, bad_gamers, bad_peers, unbalanced, own_found;
    IF in_force IS NULL OR in_force <> p_rate_id THEN
        RETURN QUERY SELECT 'rates', 0, r.id, r.gamer_pico_per_hour, r.peer_pico_per_hour,
                            r.fee_bp::BIGINT
                       FROM (SELECT 1) one LEFT JOIN rates r ON r.id = in_force;
        RETURN;
    END IF;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION '%', unbalanced USING ERRCODE = 'check_violation';
    END IF;
    IF NOT own_found THEN
        RAISE EXCEPTION 'entry for unknown account % or %', p_fee_account, p_treasury_account
            USING ERRCODE = 'check_violation';
    END IF;
    IF cardinality (bad_gamers) > 0 OR cardinality (bad_peers) > 0 THEN
        RETURN QUERY SELECT CASE WHEN u.g = ANY (bad_gamers) THEN 'gamer' ELSE 'peer' END,
                            u.n::INT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT
                       FROM unnest (p_gamers, p_peers) WITH ORDINALITY AS u (g, p, n)
                      WHERE u.g = ANY (bad_gamers) OR u.p = ANY (bad_peers);
    END IF;
    -- Claim the task ids, and write the claimed ones' task rows and entries.
    -- The ids already taken are replays. Claimed in sorted order, so that two
    -- ledgers with overlapping batches take them in the same order (a
    -- conflict waits for the other's commit, then counts as taken). The
    -- claimed ids come back as one map (task id -> transaction id), looked up
    -- per task, so the plan has no join whose choice depends on the sizes.
    -- Also what each account moves by.
    WITH u AS (
        SELECT * FROM unnest (p_task_ids, p_types, p_gamers, p_peers, p_billed, p_compute,
                              p_observed, p_charge, p_earning, p_fee, p_treasury)
                      WITH ORDINALITY AS x (t, ty, g, p, b, c, o, ch, ea, fe, tr, n)
         WHERE NOT (x.g = ANY (bad_gamers)) AND NOT (x.p = ANY (bad_peers))),
    claim AS (
        INSERT INTO journal_tx (kind, task_id)
        SELECT 'settle', u.t FROM u ORDER BY u.t
        ON CONFLICT (task_id) DO NOTHING RETURNING id, task_id),
    m AS (SELECT jsonb_object_agg (task_id, id) AS map FROM claim),
    k AS (SELECT u.*, (m.map ->> u.t)::BIGINT AS tx FROM u, m WHERE m.map ? u.t),
    task_rows AS (
        INSERT INTO tasks (task_id, tx_id, task_type, gamer_account, peer_account, billed_us,
                           compute_us, observed_us, gamer_charge_pico, peer_earning_pico,
                           fee_pico, treasury_pico, rate_id)
        SELECT k.t, k.tx, k.ty, CASE WHEN k.g = 0 THEN p_treasury_account ELSE k.g END,
               k.p, k.b, k.c, k.o, k.ch, k.ea, k.fe, k.tr,
               CASE WHEN k.g = 0 THEN NULL ELSE p_rate_id END
          FROM k),
    e AS (
        SELECT k.tx, e.i, e.account, e.amount
          FROM k, LATERAL (VALUES (1, CASE WHEN k.g = 0 THEN p_treasury_account ELSE k.g END,
                                   -k.ch),
                                  (2, k.p, k.ea),
                                  (3, p_fee_account, k.fe),
                                  (4, p_treasury_account, k.tr)) AS e (i, account, amount)
         WHERE e.i <= 2 OR k.g <> 0),
    entry_rows AS (
        INSERT INTO journal_entries (tx_id, account_id, amount_pico)
        SELECT e.tx, e.account, e.amount FROM e
         ORDER BY e.tx, e.i),    -- entries in transaction order, as statements expect
    mv AS (
        SELECT array_agg (g.account) AS ids, array_agg (g.delta) AS deltas
          FROM (SELECT e.account, SUM (e.amount)::BIGINT AS delta FROM e GROUP BY e.account) g)
    SELECT array_agg (u.n) FILTER (WHERE m.map ? u.t),
           array_agg (u.n) FILTER (WHERE (m.map ? u.t) IS NOT TRUE),
           array_agg (u.t) FILTER (WHERE (m.map ? u.t) IS NOT TRUE),
           (SELECT mv.ids FROM mv), (SELECT mv.deltas FROM mv)
      INTO new_n, replay_n, replay_ids, ids, deltas
      FROM u, m;
    -- The accounts' rows locked in id order first (so two ledgers, or a
    -- ledger and another writer, wait for each other instead of
    -- deadlocking), each moved by its entries, held until the commit that
    -- follows at once; the new tasks, and the gamers' balances after this
    -- batch for the scheduler
    RETURN QUERY
        WITH l AS (SELECT a.id FROM accounts a WHERE a.id = ANY (ids) ORDER BY a.id FOR UPDATE),
        upd AS (
            UPDATE accounts a SET balance_pico = a.balance_pico + d.delta
              FROM l, unnest (ids, deltas) AS d (id, delta)
             WHERE a.id = l.id AND d.id = l.id
            RETURNING a.id, a.kind, a.balance_pico, a.disabled)
        SELECT 'new', k.n::INT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT
          FROM unnest (new_n) AS k (n)
        UNION ALL
        SELECT 'balance', 0, upd.id, upd.balance_pico, upd.disabled::INT::BIGINT, NULL::BIGINT
          FROM upd WHERE upd.kind = 'gamer';
    -- Replays: what was stored (a new statement: it sees what the claim
    -- waited for)
    IF replay_n IS NOT NULL THEN
        RETURN QUERY SELECT 'replay', r.n::INT, t.gamer_charge_pico, t.peer_earning_pico,
                            t.fee_pico, t.treasury_pico
                       FROM unnest (replay_n, replay_ids) AS r (n, id),
                            LATERAL (SELECT * FROM tasks t WHERE t.task_id = r.id LIMIT 1) t;
    END IF;
END $$;

-- The checks skipped inside ledger_settle by the triggers' WHEN, so that
-- PostgreSQL does not even call the functions there
DROP TRIGGER journal_entries_check ON journal_entries;
CREATE TRIGGER journal_entries_check
    AFTER INSERT ON journal_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT
    WHEN (current_setting ('p2c2r.settle_checked', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION journal_entries_check ();
DROP TRIGGER tasks_check ON tasks;
CREATE TRIGGER tasks_check
    AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_tasks
    FOR EACH STATEMENT
    WHEN (current_setting ('p2c2r.settle_checked', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION tasks_check ();
