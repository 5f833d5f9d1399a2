-- P2C2R ledger schema, version 3: money of validation (issue 6).
-- A validation run's peer is paid by the treasury: its task row names the
-- treasury as payer (gamer_account), charge = the peer's earning, no fee,
-- no rates row. A settled result that later loses its validation has its
-- earning reversed: one 'adjust' transaction moves it from the peer back to
-- the treasury (never more than the peer's balance then: what was paid out
-- is gone), recorded here once per task.

CREATE TABLE reversals (
    task_id      TEXT PRIMARY KEY REFERENCES tasks (task_id),
    tx_id        BIGINT UNIQUE REFERENCES journal_tx (id),  -- NULL when nothing was left
    peer_account BIGINT NOT NULL REFERENCES accounts (id),
    amount_pico  BIGINT NOT NULL CHECK (amount_pico >= 0),  -- taken back
    earning_pico BIGINT NOT NULL CHECK (earning_pico >= amount_pico),
    reason       TEXT NOT NULL CHECK (length (reason) <= 200),
    reversed_at  TIMESTAMPTZ NOT NULL DEFAULT now (),
    CHECK ((tx_id IS NULL) = (amount_pico = 0))
);
CREATE INDEX reversals_peer ON reversals (peer_account);
CREATE TRIGGER reversals_append_only
    BEFORE UPDATE OR DELETE ON reversals
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change ();

-- What peers earned net of reversals (same columns as version 1's view)
CREATE OR REPLACE VIEW peers AS
SELECT a.name AS peer_id, a.id AS account_id,
       COUNT (t.task_id) AS tasks_completed,
       COALESCE (SUM (t.billed_us), 0)::NUMERIC AS billed_us,
       (COALESCE (SUM (t.peer_earning_pico), 0)
        - COALESCE ((SELECT SUM (r.amount_pico) FROM reversals r
                      WHERE r.peer_account = a.id), 0))::NUMERIC * 0.000000000001
           AS total_earned_usd,
       a.created_at, a.disabled
  FROM accounts a LEFT JOIN tasks t ON t.peer_account = a.id
 WHERE a.kind = 'peer'
 GROUP BY a.id;
