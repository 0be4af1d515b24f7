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
}

// NominationProblems is the data of the answer to a nomination that was
// not accepted: every problem, the form as received and a blank form.
type NominationProblems struct {
	Number   int64    `json:"number,omitempty"` // the rejected form's record number
	Problems []string `json:"problems"`
	Form     string   `json:"form"`  // the form as received
	Blank    string   `json:"blank"` // the blank form
}

// BlankForm is the data of the blank nomination form email.
type BlankForm struct {
	Blank string `json:"blank"`
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
}

// StaffAnswer is the data of the answer to a staff command email.
type StaffAnswer struct {
	Results []string `json:"results"`
	Help    bool     `json:"help,omitempty"` // list the commands
}

// JoinConfirm is the data of the double opt-in request of a sign-up.
type JoinConfirm struct {
	Name     string `json:"name"`
	District string `json:"district"`
}

// JoinProblems is the data of the answer to a sign-up that could not be
// read.
type JoinProblems struct {
	Problems []string `json:"problems"`
}

// Welcome is the data of the email confirming a member is signed up.
type Welcome struct {
	Name     string `json:"name"`
	District string `json:"district"`
	Already  bool   `json:"already,omitempty"`
}

// Unsubscribed is the data of the email confirming an unsubscribe.
type Unsubscribed struct {
	Name string `json:"name"`
}
