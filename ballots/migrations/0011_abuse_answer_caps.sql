-- 0011 (abuse): every automatic answer is counted against caps, per
-- recipient and kind, per recipient in all, and for all strangers
-- together (ballots.TakeAnswerCap); an answer a cap held back is recorded
-- (ballots.HoldAnswer) and counted in the staff digest.

-- scope names what is counted ('kind:<kind>:<address>', 'all:<address>',
-- 'strangers'); period is the start of the UTC day or hour counted; cap is
-- the bound n was last counted against.
CREATE TABLE answer_counts (
    scope   text NOT NULL,
    period  timestamptz NOT NULL,
    n       int NOT NULL,
    cap     int NOT NULL,
    PRIMARY KEY (scope, period)
);

-- One row per answer not sent because a cap was full.
CREATE TABLE answers_held (
    id          bigserial PRIMARY KEY,
    inbound_id  bigint REFERENCES inbound_messages(id),
    recipient   text NOT NULL,
    kind        text NOT NULL,
    why         text NOT NULL,
    held_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX answers_held_at ON answers_held (held_at);
