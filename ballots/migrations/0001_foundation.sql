-- 0001: the foundation schema. Every table the first round trip needs.
-- Emails are stored lowercased; uniqueness is on the stored form.

CREATE TABLE groups (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    state       text NOT NULL,               -- postal code, e.g. MA
    district    text NOT NULL DEFAULT '',    -- race code of a House district (MA-07), '' for state-wide groups
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX groups_name_key ON groups (lower(name));

CREATE TABLE group_leaders (
    group_id    bigint NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    email       text NOT NULL CHECK (email = lower(email)),
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, email)
);
CREATE INDEX group_leaders_email ON group_leaders (email);

CREATE TABLE members (
    id          bigserial PRIMARY KEY,
    email       text NOT NULL UNIQUE CHECK (email = lower(email)),
    name        text NOT NULL DEFAULT '',
    state       text NOT NULL,
    district    text NOT NULL,               -- race code of the member's House district, e.g. MA-07
    status      text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'pending', 'unsubscribed', 'bounced')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX members_state ON members (state) WHERE status = 'active';
CREATE INDEX members_district ON members (district) WHERE status = 'active';

CREATE TABLE waves (
    id                 bigserial PRIMARY KEY,
    name               text NOT NULL UNIQUE,
    nominations_close  timestamptz NOT NULL,
    voting_open        timestamptz NOT NULL,
    voting_close       timestamptz NOT NULL,
    threshold          numeric(5,4) NOT NULL DEFAULT 0.60 CHECK (threshold > 0 AND threshold <= 1),
    min_turnout        numeric(5,4) NOT NULL DEFAULT 0 CHECK (min_turnout >= 0 AND min_turnout <= 1),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (nominations_close <= voting_open AND voting_open < voting_close)
);

CREATE TABLE races (
    id          bigserial PRIMARY KEY,
    wave_id     bigint NOT NULL REFERENCES waves(id),
    code        text NOT NULL,               -- MA-SEN, MA-GOV, MA-07, AK-AL
    office      text NOT NULL CHECK (office IN ('senate', 'governor', 'house')),
    state       text NOT NULL,
    district    text NOT NULL DEFAULT '',    -- the code for House races, '' for state-wide
    status      text NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'open', 'closed')),
    opened_at   timestamptz,
    closed_at   timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (wave_id, code)
);

CREATE TABLE candidates (
    id          bigserial PRIMARY KEY,
    race_id     bigint NOT NULL REFERENCES races(id),
    name        text NOT NULL,
    bio         text NOT NULL DEFAULT '',
    status      text NOT NULL DEFAULT 'nominated'
                CHECK (status IN ('nominated', 'approved', 'rejected', 'withdrawn')),
    number      int,                         -- ballot position, fixed when the race opens
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (race_id, number)
);
CREATE UNIQUE INDEX candidates_race_name ON candidates (race_id, lower(name));

CREATE TABLE candidate_groups (
    candidate_id bigint NOT NULL REFERENCES candidates(id) ON DELETE CASCADE,
    group_id     bigint NOT NULL REFERENCES groups(id),
    PRIMARY KEY (candidate_id, group_id)
);

-- One ballot per member per race. The token is never stored: it is an
-- HMAC over (id, nonce) under BALLOTD_SECRET, recomputed when needed.
CREATE TABLE ballots (
    id          bigserial PRIMARY KEY,
    race_id     bigint NOT NULL REFERENCES races(id),
    member_id   bigint NOT NULL REFERENCES members(id),
    nonce       uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (race_id, member_id)
);
CREATE INDEX ballots_member ON ballots (member_id);

-- Every message read from the mailbox, raw bytes first. message_key is the
-- Message-ID, or a hash of the bytes when there is none: reading the same
-- message twice finds the row and changes nothing.
CREATE TABLE inbound_messages (
    id           bigserial PRIMARY KEY,
    message_key  text NOT NULL UNIQUE,
    mailbox      text NOT NULL DEFAULT '',
    uid_validity bigint NOT NULL DEFAULT 0,
    uid          bigint NOT NULL DEFAULT 0,
    raw          bytea NOT NULL,
    from_addr    text NOT NULL DEFAULT '',
    subject      text NOT NULL DEFAULT '',
    class        text NOT NULL DEFAULT 'unknown',
    outcome      text NOT NULL DEFAULT '',   -- counted, unclear, closed, not-voter, unmatched, ignored, quarantined, ...
    detail       text NOT NULL DEFAULT '',
    quarantined  boolean NOT NULL DEFAULT false,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
CREATE INDEX inbound_messages_uid ON inbound_messages (mailbox, uid_validity, uid);
CREATE INDEX inbound_messages_quarantined ON inbound_messages (id) WHERE quarantined;

-- Full vote history: every valid vote recorded; the latest one before the
-- close counts.
CREATE TABLE votes (
    id           bigserial PRIMARY KEY,
    ballot_id    bigint NOT NULL REFERENCES ballots(id),
    inbound_id   bigint NOT NULL UNIQUE REFERENCES inbound_messages(id),
    choice       text NOT NULL CHECK (choice IN ('yes', 'no', 'candidate', 'none')),
    candidate_id bigint REFERENCES candidates(id),
    receipt      text NOT NULL UNIQUE,
    cast_at      timestamptz NOT NULL,
    CHECK ((choice = 'none') = (candidate_id IS NULL))
);
CREATE INDEX votes_ballot ON votes (ballot_id, cast_at DESC, id DESC);

-- The transactional outbox: one row per message to send. Rows are rendered
-- at send time from their kind and references; data carries what the
-- references cannot (the answer read, a reason).
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL,
    recipient     text NOT NULL,
    member_id     bigint REFERENCES members(id),
    ballot_id     bigint REFERENCES ballots(id),
    race_id       bigint REFERENCES races(id),
    inbound_id    bigint REFERENCES inbound_messages(id),
    data          jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'sending', 'deferred', 'sent', 'failed')),
    attempts      int NOT NULL DEFAULT 0,
    next_attempt  timestamptz NOT NULL DEFAULT now(),
    lease_until   timestamptz,
    last_code     int,
    last_reply    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz
);
CREATE INDEX outbox_ready ON outbox (next_attempt, id) WHERE status IN ('queued', 'deferred');
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE status = 'sending';
CREATE INDEX outbox_ballot ON outbox (ballot_id) WHERE ballot_id IS NOT NULL;
CREATE UNIQUE INDEX outbox_once_per_ballot ON outbox (kind, ballot_id) WHERE kind IN ('ballot', 'announcement');

-- Frozen results, written once at the close.
CREATE TABLE tallies (
    race_id      bigint PRIMARY KEY REFERENCES races(id),
    eligible     int NOT NULL,
    voted        int NOT NULL,
    turnout      numeric NOT NULL,
    threshold    numeric NOT NULL,
    min_turnout  numeric NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tally_candidates (
    race_id      bigint NOT NULL REFERENCES tallies(race_id),
    candidate_id bigint NOT NULL REFERENCES candidates(id),
    votes        int NOT NULL,
    support      numeric NOT NULL,
    endorsed     boolean NOT NULL,
    PRIMARY KEY (race_id, candidate_id)
);

-- How far each mailbox has been read, advanced in the same transaction as
-- each message's effect: after a crash, reading resumes after the last
-- message whose effect committed.
CREATE TABLE mailbox_cursors (
    mailbox      text NOT NULL,
    uid_validity bigint NOT NULL,
    last_uid     bigint NOT NULL,
    PRIMARY KEY (mailbox, uid_validity)
);
