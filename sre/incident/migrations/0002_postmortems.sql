-- Published postmortems and a small state table for the SRE service.
--
-- incidents.postmortem_at is when the postmortem was last published (unix milliseconds, 0
-- while there is only the generated draft). It repeats incident_postmortems.published_at,
-- written in the same transaction, so that every read of an incident (List, Get) says
-- whether its postmortem is out without a join. The author lives only in
-- incident_postmortems: nothing lists incidents by it.
ALTER TABLE incidents ADD COLUMN postmortem_at BIGINT NOT NULL DEFAULT 0;
-- One row per incident with a published postmortem; publishing again replaces the row.
CREATE TABLE IF NOT EXISTS incident_postmortems (
  incident_id  TEXT PRIMARY KEY REFERENCES incidents (id),
  markdown     TEXT NOT NULL,
  author       TEXT NOT NULL,
  published_at BIGINT NOT NULL
);
-- Named snapshots of the SRE service's own state (the SLO evaluator's), as UTF-8 text.
CREATE TABLE IF NOT EXISTS sre_state (
  name     TEXT PRIMARY KEY,
  saved_at BIGINT NOT NULL,
  data     TEXT NOT NULL
);
