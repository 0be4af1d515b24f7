-- 0003: nominations by email, vetting, sign-up.
-- Every nomination form read is kept, accepted or not: the rejected ones
-- with their problems, for staff to look at.

CREATE TABLE nominations (
    id            bigserial PRIMARY KEY,
    group_id      bigint REFERENCES groups(id),          -- NULL when the form named no known group
    candidate_id  bigint REFERENCES candidates(id),      -- NULL for a rejected form
    race_code     text NOT NULL DEFAULT '',
    candidate     text NOT NULL DEFAULT '',              -- the name as written
    sender        text NOT NULL,
    form_text     text NOT NULL DEFAULT '',
    reason        text NOT NULL DEFAULT '',
    status        text NOT NULL CHECK (status IN ('accepted', 'rejected', 'withdrawn')),
    problems      text NOT NULL DEFAULT '',
    inbound_id    bigint REFERENCES inbound_messages(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- One live nomination per group and candidate: nominating again updates it.
CREATE UNIQUE INDEX nominations_group_candidate ON nominations (group_id, candidate_id) WHERE status <> 'rejected';

ALTER TABLE candidates
    ADD COLUMN questionnaire text NOT NULL DEFAULT 'none'
        CHECK (questionnaire IN ('none', 'received', 'passed', 'failed')),
    ADD COLUMN vet_reason text NOT NULL DEFAULT '',
    ADD COLUMN vetted_at timestamptz;
