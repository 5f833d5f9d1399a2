-- P2C2R ledger schema, version 1.
-- Money is BIGINT picodollars (common/p2c_money.h states the units and the
-- one rounding rule); sums and USD figures are NUMERIC, never floats.
-- The journal is double-entry and append-only: every transaction's entries
-- sum to zero (checked at COMMIT by a deferred constraint trigger), entries
-- are never updated or deleted, and a task is settled at most once because
-- journal_tx.task_id and tasks.task_id are unique.

CREATE TABLE accounts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT NOT NULL
                CHECK (kind IN ('gamer', 'peer', 'admin', 'platform_fee', 'treasury', 'external')),
    name        TEXT NOT NULL CHECK (length (name) BETWEEN 1 AND 128),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now (),
    disabled    BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (kind, name)
);

-- The two fixed system accounts the settlement credits
INSERT INTO accounts (kind, name) VALUES ('platform_fee', 'platform'), ('treasury', 'treasury');

CREATE TABLE journal_tx (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('settle', 'credit', 'payout', 'adjust')),
    task_id     TEXT UNIQUE,            -- set for settlements, and only for them
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now (),
    CHECK ((kind = 'settle') = (task_id IS NOT NULL))
);

CREATE TABLE journal_entries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id       BIGINT NOT NULL REFERENCES journal_tx (id),
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    amount_pico BIGINT NOT NULL         -- credit positive, debit negative
);
CREATE INDEX journal_entries_tx ON journal_entries (tx_id);
CREATE INDEX journal_entries_account ON journal_entries (account_id);

-- One row per settled task: what was measured and what it cost
CREATE TABLE tasks (
    task_id           TEXT PRIMARY KEY,
    tx_id             BIGINT NOT NULL UNIQUE REFERENCES journal_tx (id),
    task_type         TEXT NOT NULL,
    gamer_account     BIGINT NOT NULL REFERENCES accounts (id),
    peer_account      BIGINT NOT NULL REFERENCES accounts (id),
    billed_us         BIGINT NOT NULL CHECK (billed_us >= 0),
    compute_us        BIGINT NOT NULL CHECK (compute_us >= 0),
    observed_us       BIGINT NOT NULL CHECK (observed_us >= 0),
    gamer_charge_pico BIGINT NOT NULL CHECK (gamer_charge_pico >= 0),
    peer_earning_pico BIGINT NOT NULL CHECK (peer_earning_pico >= 0),
    fee_pico          BIGINT NOT NULL CHECK (fee_pico >= 0),
    treasury_pico     BIGINT NOT NULL,
    -- exact: a product with 12 decimals, not a division
    cost_usd          NUMERIC(32, 12) GENERATED ALWAYS AS
                      (gamer_charge_pico::NUMERIC * 0.000000000001) STORED,
    settled_at        TIMESTAMPTZ NOT NULL DEFAULT now (),
    CHECK (gamer_charge_pico = fee_pico + peer_earning_pico + treasury_pico)
);
CREATE INDEX tasks_peer ON tasks (peer_account);
CREATE INDEX tasks_gamer ON tasks (gamer_account);

-- Refuses, at COMMIT, a journal transaction whose entries do not sum to zero
CREATE FUNCTION journal_check_balanced () RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    total NUMERIC;
BEGIN
    SELECT COALESCE (SUM (amount_pico), 0) INTO total
      FROM journal_entries WHERE tx_id = NEW.tx_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'journal transaction % does not balance: sum % picodollars', NEW.tx_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER journal_entries_balanced
    AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_check_balanced ();

-- The journal is append-only: corrections are new transactions
CREATE FUNCTION journal_refuse_change () RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER journal_entries_append_only
    BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change ();
CREATE TRIGGER journal_tx_append_only
    BEFORE UPDATE OR DELETE ON journal_tx
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change ();

-- Balance of every account (credits positive)
CREATE VIEW balances AS
SELECT a.id AS account_id, a.kind, a.name, a.disabled,
       COALESCE (SUM (e.amount_pico), 0)::NUMERIC AS balance_pico,
       COALESCE (SUM (e.amount_pico), 0)::NUMERIC * 0.000000000001 AS balance_usd
  FROM accounts a LEFT JOIN journal_entries e ON e.account_id = a.id
 GROUP BY a.id;

-- Peers and what they earned from settled tasks:
--   SELECT peer_id, total_earned_usd FROM peers ORDER BY total_earned_usd DESC LIMIT 10
CREATE VIEW peers AS
SELECT a.name AS peer_id, a.id AS account_id,
       COUNT (t.task_id) AS tasks_completed,
       COALESCE (SUM (t.billed_us), 0)::NUMERIC AS billed_us,
       COALESCE (SUM (t.peer_earning_pico), 0)::NUMERIC * 0.000000000001 AS total_earned_usd,
       a.created_at, a.disabled
  FROM accounts a LEFT JOIN tasks t ON t.peer_account = a.id
 WHERE a.kind = 'peer'
 GROUP BY a.id;

-- Gamers and what they spent
CREATE VIEW gamers AS
SELECT a.name AS gamer_id, a.id AS account_id,
       COUNT (t.task_id) AS tasks_submitted,
       COALESCE (SUM (t.gamer_charge_pico), 0)::NUMERIC * 0.000000000001 AS total_spent_usd,
       a.created_at, a.disabled
  FROM accounts a LEFT JOIN tasks t ON t.gamer_account = a.id
 WHERE a.kind = 'gamer'
 GROUP BY a.id;
