-- P2C2R ledger schema, version 6: a bounded treasury subsidy (issue 14).
--
-- At the default rates peers earn 15 times what gamers pay; the treasury
-- pays the difference. The operator now sets, with the rates, a subsidy
-- budget per UTC day (rates.subsidy_pico_per_day; NULL: no limit). What the
-- treasury adds to a task (a gamer's task: earning + fee - charge when
-- positive; a validation run it pays: the whole earning) is granted in task
-- order while the day's budget lasts (subsidy_days.used_pico, locked per
-- batch); the rest is cut from the peer's earning and recorded in
-- tasks.subsidy_cut_pico, so that past the budget a peer earns at most the
-- gamer's charge less the fee. Every transaction still balances; the audit
-- checks earning + cut against the formula and the days' totals against
-- their tasks. ledger_settle is replaced with the same signature; its 'new'
-- rows now carry the amounts written (r_a..r_d = charge, earning, fee,
-- treasury share), which the ledger acks.

ALTER TABLE rates ADD COLUMN subsidy_pico_per_day BIGINT
    CHECK (subsidy_pico_per_day BETWEEN 0 AND 1000000000000000000);
ALTER TABLE tasks ADD COLUMN subsidy_cut_pico BIGINT NOT NULL DEFAULT 0
    CHECK (subsidy_cut_pico >= 0);

-- What the treasury granted per UTC day (settle time), under the budget
CREATE TABLE subsidy_days (
    day        DATE PRIMARY KEY,
    used_pico  BIGINT NOT NULL DEFAULT 0 CHECK (used_pico >= 0)
);
INSERT INTO subsidy_days (day, used_pico)
SELECT (settled_at AT TIME ZONE 'UTC')::DATE,
       SUM (CASE WHEN rate_id IS NULL THEN peer_earning_pico ELSE GREATEST (0, -treasury_pico) END)
  FROM tasks GROUP BY 1;

CREATE OR REPLACE FUNCTION ledger_settle (
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
    budget BIGINT;
    today DATE;
    used_before BIGINT;
    granted BIGINT;
    new_ch BIGINT [];
    new_ea BIGINT [];
    new_fe BIGINT [];
    new_tr BIGINT [];
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
    -- The day's subsidy row, locked: settling ledgers take the budget in
    -- turn (one row lock per batch), so the day never goes past it
    SELECT subsidy_pico_per_day INTO budget FROM rates WHERE id = in_force;
    today := (now () AT TIME ZONE 'UTC')::DATE;
    INSERT INTO subsidy_days (day) VALUES (today) ON CONFLICT (day) DO NOTHING;
    SELECT used_pico INTO used_before FROM subsidy_days WHERE day = today FOR UPDATE;
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
    k0 AS (SELECT u.*, (m.map ->> u.t)::BIGINT AS tx FROM u, m WHERE m.map ? u.t),
    -- What the treasury adds to each new task (a gamer's task: the earning
    -- and fee beyond the charge; a run it pays: the whole earning), granted
    -- in task order while the day's budget lasts; the rest is cut from the
    -- peer's earning, so that past the budget a peer earns what the gamer
    -- paid less the fee
    ks AS (SELECT k0.*, CASE WHEN k0.g = 0 THEN k0.ea ELSE GREATEST (0, -k0.tr) END AS s
             FROM k0),
    kg AS (SELECT ks.*,
                  CASE WHEN budget IS NULL THEN ks.s
                       ELSE LEAST (ks.s, GREATEST (0, budget - used_before
                                   - (SUM (ks.s) OVER (ORDER BY ks.n) - ks.s)))::BIGINT
                  END AS granted
             FROM ks),
    k AS (SELECT kg.t, kg.ty, kg.g, kg.p, kg.b, kg.c, kg.o,
                 CASE WHEN kg.g = 0 THEN kg.ea - (kg.s - kg.granted) ELSE kg.ch END AS ch,
                 kg.ea - (kg.s - kg.granted) AS ea, kg.fe,
                 CASE WHEN kg.g = 0 THEN kg.tr ELSE kg.tr + (kg.s - kg.granted) END AS tr,
                 kg.n, kg.tx, kg.s - kg.granted AS cut, kg.granted
            FROM kg),
    task_rows AS (
        INSERT INTO tasks (task_id, tx_id, task_type, gamer_account, peer_account, billed_us,
                           compute_us, observed_us, gamer_charge_pico, peer_earning_pico,
                           fee_pico, treasury_pico, rate_id, subsidy_cut_pico)
        SELECT k.t, k.tx, k.ty, CASE WHEN k.g = 0 THEN p_treasury_account ELSE k.g END,
               k.p, k.b, k.c, k.o, k.ch, k.ea, k.fe, k.tr,
               CASE WHEN k.g = 0 THEN NULL ELSE p_rate_id END, k.cut
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
    SELECT (SELECT array_agg (k.n ORDER BY k.n) FROM k),
           array_agg (u.n) FILTER (WHERE (m.map ? u.t) IS NOT TRUE),
           array_agg (u.t) FILTER (WHERE (m.map ? u.t) IS NOT TRUE),
           (SELECT mv.ids FROM mv), (SELECT mv.deltas FROM mv),
           (SELECT COALESCE (SUM (k.granted), 0) FROM k),
           (SELECT array_agg (k.ch ORDER BY k.n) FROM k),
           (SELECT array_agg (k.ea ORDER BY k.n) FROM k),
           (SELECT array_agg (k.fe ORDER BY k.n) FROM k),
           (SELECT array_agg (k.tr ORDER BY k.n) FROM k)
      INTO new_n, replay_n, replay_ids, ids, deltas, granted, new_ch, new_ea, new_fe, new_tr
      FROM u, m;
    UPDATE subsidy_days SET used_pico = used_pico + granted WHERE day = today;
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
        SELECT 'new', k.n::INT, k.ch, k.ea, k.fe, k.tr
          FROM unnest (new_n, new_ch, new_ea, new_fe, new_tr) AS k (n, ch, ea, fe, tr)
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

