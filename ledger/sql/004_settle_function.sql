-- P2C2R ledger schema, version 4: settlement in one statement, and journal
-- checks whose plans are index lookups.
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
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    bad TEXT;
    ids BIGINT [];
    deltas BIGINT [];
    locked INT;
BEGIN
    -- Each statement's entries of a transaction sum to zero, so every
    -- transaction's entries, the sum of its statements', do too
    SELECT format ('journal transaction %s does not balance: sum %s picodollars', tx_id,
                   SUM (amount_pico)) INTO bad
      FROM new_entries GROUP BY tx_id HAVING SUM (amount_pico) <> 0 LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '%', bad USING ERRCODE = 'check_violation';
    END IF;
    -- What each account moves by, in id order
    SELECT array_agg (d.account_id ORDER BY d.account_id), array_agg (d.delta ORDER BY d.account_id)
      INTO ids, deltas
      FROM (SELECT account_id, SUM (amount_pico)::BIGINT AS delta
              FROM new_entries GROUP BY account_id) d;
    -- Rows locked in id order first, so two ledgers committing batches that
    -- touch the same accounts wait for each other instead of deadlocking;
    -- an account that is not there is not locked
    SELECT count (*) INTO locked
      FROM (SELECT 1 FROM accounts WHERE id = ANY (ids) ORDER BY id FOR UPDATE) l;
    IF locked <> cardinality (ids) THEN
        SELECT format ('entry for unknown account %s', i.id) INTO bad
          FROM unnest (ids) AS i (id)
         WHERE (SELECT a.id FROM accounts a WHERE a.id = i.id) IS NULL LIMIT 1;
        RAISE EXCEPTION '%', bad USING ERRCODE = 'check_violation';
    END IF;
    SELECT format ('entry for unknown transaction %s', n.tx_id) INTO bad
      FROM (SELECT DISTINCT tx_id FROM new_entries) n
     WHERE (SELECT j.id FROM journal_tx j WHERE j.id = n.tx_id) IS NULL LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '%', bad USING ERRCODE = 'check_violation';
    END IF;
    -- One table, no join: the locked rows by their index
    UPDATE accounts a SET balance_pico = a.balance_pico + deltas [array_position (ids, a.id)]
     WHERE a.id = ANY (ids);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION tasks_check () RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    bad TEXT;
BEGIN
    SELECT format ('task %s: no settle transaction %s of that task', n.task_id, n.tx_id) INTO bad
      FROM new_tasks n
     WHERE (SELECT j.task_id FROM journal_tx j WHERE j.id = n.tx_id AND j.kind = 'settle')
           IS DISTINCT FROM n.task_id LIMIT 1;
    IF bad IS NULL THEN
        SELECT format ('task %s: unknown account', n.task_id) INTO bad
          FROM new_tasks n,
               (SELECT gamer_account AS id FROM new_tasks
                UNION SELECT peer_account FROM new_tasks) u
         WHERE (SELECT a.id FROM accounts a WHERE a.id = u.id) IS NULL
           AND u.id IN (n.gamer_account, n.peer_account) LIMIT 1;
    END IF;
    IF bad IS NULL THEN
        SELECT format ('task %s: unknown rates %s', n.task_id, n.rate_id) INTO bad
          FROM new_tasks n,
               (SELECT DISTINCT rate_id FROM new_tasks WHERE rate_id IS NOT NULL) u
         WHERE (SELECT r.id FROM rates r WHERE r.id = u.rate_id) IS NULL
           AND n.rate_id = u.rate_id LIMIT 1;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '%', bad USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

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
CREATE FUNCTION ledger_settle (
    p_rate_id BIGINT, p_task_ids TEXT [], p_types TEXT [], p_gamers BIGINT [],
    p_peers BIGINT [], p_billed BIGINT [], p_compute BIGINT [], p_observed BIGINT [],
    p_charge BIGINT [], p_earning BIGINT [], p_fee BIGINT [], p_treasury BIGINT [],
    p_fee_account BIGINT, p_treasury_account BIGINT)
RETURNS TABLE (r_what TEXT, r_n INT, r_a BIGINT, r_b BIGINT, r_c BIGINT, r_d BIGINT)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    in_force BIGINT;
    refused TEXT [];
    new_n INT [];
    new_tx BIGINT [];
    gamers BIGINT [];
BEGIN
    -- The share lock orders us with a rates change (ledger's rates-set takes
    -- SHARE ROW EXCLUSIVE), so a task's settled_at and its rates agree
    LOCK TABLE rates IN SHARE MODE;
    SELECT id INTO in_force FROM rates WHERE effective_at <= now ()
     ORDER BY effective_at DESC LIMIT 1;
    IF in_force IS NULL OR in_force <> p_rate_id THEN
        RETURN QUERY SELECT 'rates', 0, r.id, r.gamer_pico_per_hour, r.peer_pico_per_hour,
                            r.fee_bp::BIGINT
                       FROM (SELECT 1) one LEFT JOIN rates r ON r.id = in_force;
        RETURN;
    END IF;
    -- The accounts named must exist with the right kind
    SELECT array_agg (CASE
               WHEN u.g <> 0 AND (SELECT a.kind FROM accounts a WHERE a.id = u.g)
                                 IS DISTINCT FROM 'gamer' THEN 'gamer'
               WHEN (SELECT a.kind FROM accounts a WHERE a.id = u.p)
                    IS DISTINCT FROM 'peer' THEN 'peer' END ORDER BY u.n)
      INTO refused
      FROM unnest (p_gamers, p_peers) WITH ORDINALITY AS u (g, p, n);
    RETURN QUERY SELECT refused [u.n], u.n::INT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                        NULL::BIGINT
                   FROM generate_subscripts (refused, 1) AS u (n)
                  WHERE refused [u.n] IS NOT NULL;
    -- Claim the task ids; the ones already taken are replays. Sorted, so
    -- that two ledgers with overlapping batches take them in the same order
    -- (a conflict waits for the other's commit, then counts as taken).
    WITH c AS (
        INSERT INTO journal_tx (kind, task_id)
        SELECT 'settle', u.t FROM unnest (p_task_ids) WITH ORDINALITY AS u (t, n)
         WHERE refused [u.n] IS NULL ORDER BY u.t
        ON CONFLICT (task_id) DO NOTHING RETURNING id, task_id)
    SELECT array_agg (u.n ORDER BY u.n), array_agg (c.id ORDER BY u.n) INTO new_n, new_tx
      FROM c JOIN unnest (p_task_ids) WITH ORDINALITY AS u (t, n) ON u.t = c.task_id;
    IF new_n IS NOT NULL THEN
        INSERT INTO tasks (task_id, tx_id, task_type, gamer_account, peer_account, billed_us,
                           compute_us, observed_us, gamer_charge_pico, peer_earning_pico,
                           fee_pico, treasury_pico, rate_id)
        SELECT p_task_ids [k.n], k.tx, p_types [k.n],
               CASE WHEN p_gamers [k.n] = 0 THEN p_treasury_account ELSE p_gamers [k.n] END,
               p_peers [k.n], p_billed [k.n], p_compute [k.n], p_observed [k.n],
               p_charge [k.n], p_earning [k.n], p_fee [k.n], p_treasury [k.n],
               CASE WHEN p_gamers [k.n] = 0 THEN NULL ELSE p_rate_id END
          FROM unnest (new_n, new_tx) AS k (n, tx);
        -- Entries last: their trigger locks the accounts' rows, held until
        -- the commit, so other batches wait for them as little as can be
        INSERT INTO journal_entries (tx_id, account_id, amount_pico)
        SELECT k.tx, e.account, e.amount
          FROM unnest (new_n, new_tx) AS k (n, tx),
               LATERAL (VALUES (1, CASE WHEN p_gamers [k.n] = 0 THEN p_treasury_account
                                        ELSE p_gamers [k.n] END, -p_charge [k.n]),
                               (2, p_peers [k.n], p_earning [k.n]),
                               (3, p_fee_account, p_fee [k.n]),
                               (4, p_treasury_account, p_treasury [k.n])) AS e (i, account, amount)
         WHERE e.i <= 2 OR p_gamers [k.n] <> 0
         ORDER BY k.n, e.i;
        RETURN QUERY SELECT 'new', k.n, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT
                       FROM unnest (new_n) AS k (n);
        -- The gamers' balances after this batch, for the scheduler
        SELECT array_agg (DISTINCT p_gamers [k.n]) INTO gamers
          FROM unnest (new_n) AS k (n) WHERE p_gamers [k.n] <> 0;
        RETURN QUERY SELECT 'balance', 0, a.id, a.balance_pico, a.disabled::INT::BIGINT,
                            NULL::BIGINT
                       FROM accounts a WHERE a.id = ANY (gamers) AND a.kind = 'gamer';
    END IF;
    -- Replays: what was stored (a new statement: it sees what the claim
    -- waited for)
    RETURN QUERY SELECT 'replay', u.n::INT, t.gamer_charge_pico, t.peer_earning_pico,
                        t.fee_pico, t.treasury_pico
                   FROM unnest (p_task_ids) WITH ORDINALITY AS u (id, n),
                        LATERAL (SELECT * FROM tasks t WHERE t.task_id = u.id LIMIT 1) t
                  WHERE refused [u.n] IS NULL AND NOT (u.n = ANY (COALESCE (new_n, '{}')));
END $$;
