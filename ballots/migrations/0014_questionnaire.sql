-- 0013 (issue 20): what staff weigh in vetting (seed 002, step 3), and the
-- policy questionnaire by email.
--
-- Each nomination keeps the factors its form gave: the campaign's email
-- (where the questionnaire goes), partner endorsements, whether the
-- candidate runs for the first time, past races. The candidate keeps the
-- first campaign email a form gave: the questionnaire went there.

ALTER TABLE nominations
    ADD COLUMN campaign_email text NOT NULL DEFAULT '',
    ADD COLUMN partners       text NOT NULL DEFAULT '',
    ADD COLUMN first_time     text NOT NULL DEFAULT '' CHECK (first_time IN ('', 'yes', 'no')),
    ADD COLUMN past_races     text NOT NULL DEFAULT '';

-- questionnaire_required: the candidate was nominated while the
-- questionnaire step was on (BALLOTD_QUESTIONNAIRE): they go on a ballot
-- only once approved and with a passed questionnaire.
ALTER TABLE candidates
    ADD COLUMN campaign_email text NOT NULL DEFAULT '',
    ADD COLUMN questionnaire_required boolean NOT NULL DEFAULT false;

-- One questionnaire per candidate: sent once, to the campaign email, with
-- a deadline (the wave's nominations close); at most one reminder; the
-- latest reply kept (a second reply replaces the first).
CREATE TABLE questionnaires (
    candidate_id  bigint PRIMARY KEY REFERENCES candidates(id),
    email         text NOT NULL,
    questions     text NOT NULL,          -- the questions as sent, numbered
    deadline      timestamptz NOT NULL,
    sent_at       timestamptz NOT NULL DEFAULT now(),
    reminded_at   timestamptz,
    received_at   timestamptz,
    replies       int NOT NULL DEFAULT 0, -- replies read; the latest stands
    inbound_id    bigint REFERENCES inbound_messages(id),
    answers       jsonb NOT NULL DEFAULT '[]', -- [{"number": 1, "question": "…", "answer": "…"}]
    unread        int[] NOT NULL DEFAULT '{}', -- question numbers no answer was found for
    attachments   text[] NOT NULL DEFAULT '{}',
    reviewed_by   text NOT NULL DEFAULT '',
    review_reason text NOT NULL DEFAULT ''
);
-- The reminder step looks for questionnaires not answered before their
-- deadline.
CREATE INDEX questionnaires_unanswered ON questionnaires (deadline) WHERE received_at IS NULL AND reminded_at IS NULL;
