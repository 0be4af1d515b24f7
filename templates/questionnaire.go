package templates

import "time"

// The policy questionnaire (issue 20): sent to a candidate's campaign when
// their first nomination with a campaign email is confirmed, answered by
// reply, reviewed by staff.

// QuestionnaireMail is the payload of the questionnaire (and of its one
// reminder) to a campaign. The Reply-To carries the candidate's
// questionnaire token.
type QuestionnaireMail struct {
	CandidateID int64     `json:"candidate_id"`
	Candidate   string    `json:"candidate"`
	Race        string    `json:"race"`
	RaceTitle   string    `json:"race_title"`
	Groups      []string  `json:"groups"`
	Questions   []string  `json:"questions"`
	Deadline    time.Time `json:"deadline"`
	// Reminder marks the one reminder before the deadline.
	Reminder bool `json:"reminder,omitempty"`
}

// Questionnaire is the template data of the questionnaire: the payload,
// with the deadline in staff's zone and the reply address.
type Questionnaire struct {
	QuestionnaireMail
	Reply string
}

// QAnswer is one answer as mailed: the question's number and text, and
// the campaign's answer.
type QAnswer struct {
	Number   int    `json:"number"`
	Question string `json:"question"`
	Answer   string `json:"answer"`
}

// QuestionnaireReceipt is the data of the receipt to a campaign's reply:
// which questions were read and which were not, and whether it replaced
// an earlier reply.
type QuestionnaireReceipt struct {
	Candidate string `json:"candidate"`
	Race      string `json:"race"`
	Answered  int    `json:"answered"`
	Questions int    `json:"questions"`
	Unread    []int  `json:"unread"`
	// Attachments are the file names of the documents attached.
	Attachments []string `json:"attachments"`
	Replaced    bool     `json:"replaced,omitempty"`
	Late        bool     `json:"late,omitempty"`
	Thread
}

// QuestionnaireAnswers is the data of the notice staff get with a
// campaign's answers; its Reply-To is a staff command address (PASS n,
// FAIL n reason).
type QuestionnaireAnswers struct {
	CandidateID int64     `json:"candidate_id"`
	Candidate   string    `json:"candidate"`
	Race        string    `json:"race"`
	Status      string    `json:"status"` // the candidate's vetting status
	Groups      []string  `json:"groups"`
	From        string    `json:"from"`
	Answers     []QAnswer `json:"answers"`
	Unread      []int     `json:"unread"`
	Attachments []string  `json:"attachments"`
	Replaced    bool      `json:"replaced,omitempty"`
	Late        bool      `json:"late,omitempty"`
}

// QuestionnaireShared is the data of the mail that shares a passed
// questionnaire's answers with a leader of a group in the race's state or
// district.
type QuestionnaireShared struct {
	Name        string    `json:"name"` // the leader's
	Candidate   string    `json:"candidate"`
	Race        string    `json:"race"`
	RaceTitle   string    `json:"race_title"`
	Groups      []string  `json:"groups"` // the nominating groups
	Answers     []QAnswer `json:"answers"`
	Attachments []string  `json:"attachments"`
}

// Kind is KindQuestionnaireShared.
func (QuestionnaireShared) Kind() Kind { return KindQuestionnaireShared }

// Kind is KindQuestionnaire.
func (QuestionnaireMail) Kind() Kind { return KindQuestionnaire }

// Kind is KindQuestionnaireReceipt.
func (QuestionnaireReceipt) Kind() Kind { return KindQuestionnaireReceipt }

// Kind is KindQuestionnaireAnswers.
func (QuestionnaireAnswers) Kind() Kind { return KindQuestionnaireAnswers }
