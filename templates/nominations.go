package templates

// NominationConfirm is the data of the answer to an accepted (or
// withdrawn) nomination.
type NominationConfirm struct {
	Number    int64    `json:"number"`
	Group     string   `json:"group"`
	Candidate string   `json:"candidate"`
	Race      string   `json:"race"`
	Groups    []string `json:"groups"`
	Updated   bool     `json:"updated,omitempty"`
	Withdrawn bool     `json:"withdrawn,omitempty"`
	// The factors the form gave, quoted back so the leader sees what was
	// read ("" when not given).
	Campaign  string `json:"campaign_email,omitempty"`
	Partners  string `json:"partners,omitempty"`
	FirstTime string `json:"first_time,omitempty"`
	PastRaces string `json:"past_races,omitempty"`
	// Questionnaire says the policy questionnaire goes to the campaign
	// email (the step is on and the address is known).
	Questionnaire bool `json:"questionnaire,omitempty"`
	Thread
}

// NominationProblems is the data of the answer to a nomination that was
// not accepted: every problem, the form as received and a blank form.
type NominationProblems struct {
	Number   int64    `json:"number,omitempty"` // the rejected form's record number
	Problems []string `json:"problems"`
	Form     string   `json:"form"`  // the form as received
	Blank    string   `json:"blank"` // the blank form
	Thread
}

// BlankForm is the data of the blank nomination form email.
type BlankForm struct {
	Blank string `json:"blank"`
	Thread
}

// VettingNotice is the data of the notice staff get for each new
// nomination; its Reply-To is a staff command address.
type VettingNotice struct {
	Number      int64    `json:"number"` // nomination number
	CandidateID int64    `json:"candidate_id"`
	Candidate   string   `json:"candidate"`
	Status      string   `json:"status"`
	Race        string   `json:"race"`
	Group       string   `json:"group"`
	Groups      []string `json:"groups"`
	Conflicts   []string `json:"conflicts"`
	Reason      string   `json:"reason"`
	// What staff weigh beyond the groups (seed 002, step 3): the
	// campaign's email, partner endorsements, first-time candidate ("yes",
	// "no" or "" when no form said), past races, and the questionnaire's
	// status ("" when the questionnaire step is off).
	Campaign      string   `json:"campaign_email,omitempty"`
	Partners      []string `json:"partners,omitempty"`
	FirstTime     string   `json:"first_time,omitempty"`
	PastRaces     []string `json:"past_races,omitempty"`
	Questionnaire string   `json:"questionnaire,omitempty"`
}

// StaffAnswer is the data of the answer to a staff command email.
type StaffAnswer struct {
	Results []string `json:"results"`
	Help    bool     `json:"help,omitempty"` // list the commands
	Thread
}

// JoinConfirm is the data of the double opt-in request of a sign-up. Its
// Name is the requester's words, not the address owner's: the request
// quotes it and never greets with it.
type JoinConfirm struct {
	Name     string `json:"name"`
	District string `json:"district"`
	Thread
}

// JoinProblems is the data of the answer to a sign-up that could not be
// read.
type JoinProblems struct {
	Problems []string `json:"problems"`
	Thread
}

// Welcome is the data of the email confirming a member is signed up.
type Welcome struct {
	Name     string `json:"name"`
	District string `json:"district"`
	Already  bool   `json:"already,omitempty"`
	Thread
}

// Unsubscribed is the data of the email confirming an unsubscribe.
type Unsubscribed struct {
	Name string `json:"name"`
	Thread
}

// MemberChange is the data of the request to a member's registered address
// to confirm a change a sign-up asked for. Name is the member's name on
// record (the greeting never carries the requester's words); the change
// is stated old → new.
type MemberChange struct {
	Name        string `json:"name"`
	OldName     string `json:"old_name"`
	NewName     string `json:"new_name"`
	OldDistrict string `json:"old_district"`
	NewDistrict string `json:"new_district"`
	OldStatus   string `json:"old_status"`
	NewStatus   string `json:"new_status"`
	// ChangeID names the change; the Reply-To's token is made from it.
	ChangeID int64 `json:"change_id"`
	Thread
}

// UnauthenticatedRequest is the data of the notice to a registered
// address that a message in its name that would have changed something
// failed sender authentication and was not acted on.
type UnauthenticatedRequest struct {
	What    string `json:"what"` // "a sign-up", "a nomination", …
	Sender  string `json:"sender"`
	Subject string `json:"subject"`
	Thread
}
