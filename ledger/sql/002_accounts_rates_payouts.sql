-- P2C2R ledger schema, version 2: API keys, stored balances, effective-dated
-- rates, external funding, payouts.
-- Balances are kept in accounts.balance_pico by a statement trigger on the
-- journal, so that the ledger can tell the scheduler a gamer's balance after
-- every commit without summing the journal; `p2c2r-ctl audit` checks that
-- each stored balance equals the sum of the account's entries.

ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check
    CHECK (kind IN ('gamer', 'peer', 'admin', 'platform_fee', 'treasury', 'external',
                    'payouts_pending'));
-- Only the SHA-256 of an API key is stored (hex); the key is shown once
ALTER TABLE accounts ADD COLUMN key_hash TEXT UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$');
ALTER TABLE accounts ADD COLUMN key_created_at TIMESTAMPTZ;
ALTER TABLE accounts ADD COLUMN balance_pico BIGINT NOT NULL DEFAULT 0;
UPDATE accounts a
   SET balance_pico = COALESCE ((SELECT SUM (e.amount_pico) FROM journal_entries e
                                  WHERE e.account_id = a.id), 0);

-- Where top-ups come from and paid payouts go: money outside the platform
INSERT INTO accounts (kind, name) VALUES ('external', 'funding'), ('payouts_pending', 'payouts');

ALTER TABLE journal_tx ADD COLUMN memo TEXT CHECK (length (memo) <= 500);

-- The journal's rules, checked once per statement over all its rows rather
-- than once per row (row-level foreign keys and the deferred per-row sum
-- check of version 1 cost more than the inserts themselves in a batch of a
-- thousand settlements). For the rows a statement inserted into
-- journal_entries: each transaction's entries in it sum to zero, every
-- account and transaction exists, and accounts.balance_pico moves by the
-- amounts. Accounts are never deleted (trigger below) and the journal
-- is append-only, so what is checked at insert stays true.
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_tx_id_fkey;
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_account_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_tx_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_gamer_account_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_peer_account_fkey;
DROP TRIGGER journal_entries_balanced ON journal_entries;
DROP FUNCTION journal_check_balanced ();

CREATE FUNCTION journal_entries_check () RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    bad TEXT;
BEGIN
    -- Each statement's entries of a transaction sum to zero, so every
    -- transaction's entries, the sum of its statements', do too
    SELECT format ('journal transaction %s does not balance: sum %s picodollars', tx_id,
                   SUM (amount_pico)) INTO bad
      FROM new_entries GROUP BY tx_id HAVING SUM (amount_pico) <> 0 LIMIT 1;
    IF bad IS NULL THEN
        SELECT format ('entry for unknown account %s', n.account_id) INTO bad
          FROM (SELECT DISTINCT account_id FROM new_entries) n
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = n.account_id) LIMIT 1;
    END IF;
    IF bad IS NULL THEN
        SELECT format ('entry for unknown transaction %s', n.tx_id) INTO bad
          FROM (SELECT DISTINCT tx_id FROM new_entries) n
         WHERE NOT EXISTS (SELECT 1 FROM journal_tx j WHERE j.id = n.tx_id) LIMIT 1;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '%', bad USING ERRCODE = 'check_violation';
    END IF;
    -- Rows locked in id order first, so two ledgers committing batches that
    -- touch the same accounts wait for each other instead of deadlocking
    PERFORM 1 FROM accounts WHERE id IN (SELECT account_id FROM new_entries)
      ORDER BY id FOR UPDATE;
    UPDATE accounts a SET balance_pico = a.balance_pico + d.delta
      FROM (SELECT account_id, SUM (amount_pico)::BIGINT AS delta
              FROM new_entries GROUP BY account_id) d
     WHERE a.id = d.account_id;
    RETURN NULL;
END $$;

CREATE TRIGGER journal_entries_check
    AFTER INSERT ON journal_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION journal_entries_check ();

-- A task row names its own settle transaction and existing accounts
CREATE FUNCTION tasks_check () RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    bad TEXT;
BEGIN
    SELECT format ('task %s: no settle transaction %s of that task', n.task_id, n.tx_id) INTO bad
      FROM new_tasks n LEFT JOIN journal_tx j ON j.id = n.tx_id
     WHERE j.id IS NULL OR j.kind <> 'settle' OR j.task_id IS DISTINCT FROM n.task_id LIMIT 1;
    IF bad IS NULL THEN
        SELECT format ('task %s: unknown account', n.task_id) INTO bad
          FROM new_tasks n
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = n.gamer_account)
            OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = n.peer_account) LIMIT 1;
    END IF;
    IF bad IS NULL THEN
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

CREATE TRIGGER tasks_check
    AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_check ();

-- The rows the checks above rely on never go away
CREATE TRIGGER accounts_no_delete
    BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change ();
CREATE TRIGGER tasks_append_only
    BEFORE UPDATE OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change ();

-- Rates in force from effective_at on. A task is settled at the row in force
-- at its settlement (recorded in tasks.rate_id). Rows are never changed and
-- never start in the past, so a change cannot rewrite history.
CREATE TABLE rates (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    effective_at        TIMESTAMPTZ NOT NULL UNIQUE,
    gamer_pico_per_hour BIGINT NOT NULL CHECK (gamer_pico_per_hour BETWEEN 0 AND 1000000000000000),
    peer_pico_per_hour  BIGINT NOT NULL CHECK (peer_pico_per_hour BETWEEN 0 AND 1000000000000000),
    fee_bp              INT NOT NULL CHECK (fee_bp BETWEEN 0 AND 10000),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now (),
    CHECK (effective_at >= created_at)
);
CREATE TRIGGER rates_append_only
    BEFORE UPDATE OR DELETE ON rates
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change ();

-- Checked by tasks_check (NULL for tasks settled before version 2)
ALTER TABLE tasks ADD COLUMN rate_id BIGINT;

-- A peer's request to be paid: the amount moved from its account to the
-- payouts-pending account (request_tx), later paid out to the external
-- account (paid_tx) by an outside payment run.
CREATE TABLE payouts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    amount_pico  BIGINT NOT NULL CHECK (amount_pico > 0),
    request_tx   BIGINT NOT NULL UNIQUE REFERENCES journal_tx (id),
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now (),
    paid_tx      BIGINT UNIQUE REFERENCES journal_tx (id),
    paid_at      TIMESTAMPTZ,
    reference    TEXT CHECK (length (reference) <= 200),
    CHECK ((paid_tx IS NULL) = (paid_at IS NULL))
);
CREATE INDEX payouts_account ON payouts (account_id);
