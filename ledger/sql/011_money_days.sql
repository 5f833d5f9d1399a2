-- P2C2R ledger schema, version 11: what settlement moved, per UTC day
-- (issue 19), so that the ledger can show the operator's page gamers'
-- spending, peers' earnings, the fee and the treasury's net today and in
-- all without summing the tasks table (hundreds of millions of rows a day
-- at full load). One row per day of settled_at (UTC), the same columns
-- p2c2r-ctl revenue sums from tasks. A statement trigger adds each insert
-- into tasks (one settlement batch: one statement, one row update). Every
-- batch already locks the day's subsidy_days row and the fee and treasury
-- accounts' rows until it commits, so this row's lock, taken in between,
-- adds no new wait and no new lock order. Exact (NUMERIC sums), written
-- in the settling transaction, so the totals equal their tasks at every
-- snapshot whichever ledger settled them.
-- The trigger's function runs as the owner (SECURITY DEFINER), so the
-- ledger's role (008) only reads the table (SELECT by default privileges)
-- and nobody but settlement writes it. (010 is kept for client_refs.)

CREATE TABLE money_days (
    day           DATE PRIMARY KEY,
    tasks         BIGINT NOT NULL DEFAULT 0 CHECK (tasks >= 0),
    charge_pico   NUMERIC NOT NULL DEFAULT 0,
    earning_pico  NUMERIC NOT NULL DEFAULT 0,
    fee_pico      NUMERIC NOT NULL DEFAULT 0,
    treasury_pico NUMERIC NOT NULL DEFAULT 0
);

CREATE FUNCTION money_days_add () RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO money_days AS m (day, tasks, charge_pico, earning_pico, fee_pico, treasury_pico)
    SELECT (n.settled_at AT TIME ZONE 'UTC')::DATE, COUNT (*), SUM (n.gamer_charge_pico),
           SUM (n.peer_earning_pico), SUM (n.fee_pico), SUM (n.treasury_pico)
      FROM new_tasks n GROUP BY 1
    ON CONFLICT (day) DO UPDATE
       SET tasks = m.tasks + EXCLUDED.tasks,
           charge_pico = m.charge_pico + EXCLUDED.charge_pico,
           earning_pico = m.earning_pico + EXCLUDED.earning_pico,
           fee_pico = m.fee_pico + EXCLUDED.fee_pico,
           treasury_pico = m.treasury_pico + EXCLUDED.treasury_pico;
    RETURN NULL;
END $$;

-- Created before the rows are counted: its lock on tasks holds settlement
-- back until this migration commits, so no task is counted twice or missed
CREATE TRIGGER tasks_money_days
    AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION money_days_add ();

INSERT INTO money_days (day, tasks, charge_pico, earning_pico, fee_pico, treasury_pico)
SELECT (settled_at AT TIME ZONE 'UTC')::DATE, COUNT (*), SUM (gamer_charge_pico),
       SUM (peer_earning_pico), SUM (fee_pico), SUM (treasury_pico)
  FROM tasks GROUP BY 1;
