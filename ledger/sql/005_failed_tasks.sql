-- P2C2R ledger schema, version 5: a task reported to its gamer as failed is
-- never charged (issue 15).
-- A gateway that answers a gamer's task with an error of its own (its
-- deadline guard's `timeout`) tells the ledger, which records it here once
-- per task. When that task is settled too (its settlement raced the
-- failure: the result was late, or its Deliver died with the broker or the
-- scheduler), the gamer's charge is refunded: one 'adjust' transaction
-- credits the gamer its charge and takes the fee back, and the treasury
-- bears the rest; the peer keeps its earning (it did the work, the fault
-- was ours). The refund is recorded once per task in refunds.

CREATE TABLE failed_tasks (
    task_id       TEXT PRIMARY KEY CHECK (length (task_id) BETWEEN 1 AND 128),
    gamer_account BIGINT NOT NULL REFERENCES accounts (id),
    code          TEXT NOT NULL CHECK (length (code) <= 32),
    reported_at   TIMESTAMPTZ NOT NULL DEFAULT now ()
);
CREATE TRIGGER failed_tasks_append_only
    BEFORE UPDATE OR DELETE ON failed_tasks
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change ();

CREATE TABLE refunds (
    task_id       TEXT PRIMARY KEY REFERENCES tasks (task_id),
    tx_id         BIGINT UNIQUE REFERENCES journal_tx (id),  -- NULL when the charge was 0
    gamer_account BIGINT NOT NULL REFERENCES accounts (id),
    amount_pico   BIGINT NOT NULL CHECK (amount_pico >= 0),
    fee_pico      BIGINT NOT NULL CHECK (fee_pico >= 0 AND fee_pico <= amount_pico),
    reason        TEXT NOT NULL CHECK (length (reason) <= 200),
    refunded_at   TIMESTAMPTZ NOT NULL DEFAULT now (),
    CHECK ((tx_id IS NULL) = (amount_pico = 0))
);
CREATE INDEX refunds_gamer ON refunds (gamer_account);
CREATE TRIGGER refunds_append_only
    BEFORE UPDATE OR DELETE ON refunds
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change ();
