-- 0005: the wave runs itself. Every scheduled step is recorded in the same
-- transaction as its effect, once: a restart resumes without repeating a mail.

CREATE TABLE wave_steps (
    wave_id  bigint NOT NULL REFERENCES waves(id),
    step     text NOT NULL,                  -- nominations-closed
    done_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wave_id, step)
);

CREATE TABLE race_steps (
    race_id  bigint NOT NULL REFERENCES races(id),
    step     text NOT NULL,                  -- open, remind, close
    actor    text NOT NULL DEFAULT 'scheduler', -- scheduler or manual
    done_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (race_id, step)
);

-- Staff digests sent: the last one bounds "since the last digest".
CREATE TABLE digests (
    id          bigserial PRIMARY KEY,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    recipients  text[] NOT NULL,
    summary     jsonb NOT NULL DEFAULT '{}'
);

-- One reminder per ballot, ever.
CREATE UNIQUE INDEX outbox_once_per_ballot_reminder ON outbox (kind, ballot_id) WHERE kind = 'reminder';

-- Results held for staff: at the close the tally is frozen as always, and
-- the announcements wait for a release.
ALTER TABLE waves ADD COLUMN hold_results boolean NOT NULL DEFAULT false;
ALTER TABLE races ADD COLUMN released_at timestamptz;

-- Reachable turnout: eligible minus ballots that could not be delivered,
-- frozen with the tally. NULL in tallies frozen before this column.
ALTER TABLE tallies ADD COLUMN reachable int;
