package message

import "testing"

// BenchmarkReadAnswer is the reader alone on a typical phone reply: a
// short answer, a comment, a signature and the quoted ballot.
func BenchmarkReadAnswer(b *testing.B) {
	m := &Message{Text: "I vote for Kennedy. Thanks for organizing!\n\nMaria\nSent from my iPhone\n" + gmailQuote}
	for b.Loop() {
		if a := ReadAnswer(m, threeChoices, "Maria Lopez"); a.Kind != AnswerCandidate {
			b.Fatalf("%+v", a)
		}
	}
}
