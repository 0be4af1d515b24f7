package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// Outcomes of handling a message, as recorded and logged.
const (
	OutcomeCounted     = "counted"
	OutcomeUnclear     = "unclear"
	OutcomeClosed      = "closed"
	OutcomeNotVoter    = "not-voter"
	OutcomeUnmatched   = "unmatched"
	OutcomeIgnored     = "ignored"
	OutcomeQuarantined = "quarantined"
	OutcomeDuplicate   = "duplicate"
	// OutcomeUnauthenticated is a message that would change something (a
	// vote, a sign-up, a nomination, a staff command…) whose From the
	// trusted server could not authenticate: not acted on, quarantined.
	OutcomeUnauthenticated = "unauthenticated"
	// OutcomeStale is a reply written before the vote that stands (by its
	// Date): a replay cannot undo a later vote.
	OutcomeStale = "stale"
	// OutcomeBounced is a delivery report mapped back to the message it
	// reports on.
	OutcomeBounced = "bounced"
)

// Delivery is one message as the mailbox holds it.
type Delivery struct {
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Raw         []byte
}

// Result says what handling a delivery did.
type Result struct {
	InboundID int64
	Class     message.Class
	Outcome   string
	Race      string

	received time.Time // a replay: when the message first arrived
	// batch is what the batch this message is handled in shares
	// (Processor.HandleBatch); nil outside a batch.
	batch *batchState
}

// batchState is what the messages of a batch share in its transaction:
// the ballots their reply addresses name and the votes standing on them,
// loaded at once, and their outcomes and the answers to their votes,
// recorded at once at the end.
type batchState struct {
	ballots  map[int64]ballots.Ballot
	standing map[int64]ballots.Standing
	// A ballot voted on in the batch is dropped from both maps.
	finished []int64
	outcomes []ballots.Outcome
	// votes (with their receipts) and mails, the answers to the batch's
	// votes, are recorded and enqueued at a flush.
	votes    []ballots.VoteInput
	receipts []string
	mails    []ballots.Mail
	// claims are the answers among mails not yet counted against the
	// answer policy: claimed together at a flush, before the mails are
	// enqueued (answerAs).
	claims []pendingClaim
	// wait is how long the answers of the batch wait before they come due
	// (Processor.AnswersWait).
	wait time.Duration
	// raw is the message being handled.
	raw []byte
}

// What serve holds answers back by (Processor.AnswersWait): in a wave of
// replies, the answers to a batch with more than two batches behind it in
// the mailbox wait until the reader has caught up, or a minute at most.
const (
	DefaultAnswersWait   = time.Minute
	DefaultAnswersBehind = 100
)

// Processor applies each message's effect: one transaction records the raw
// message, its class and outcome, any vote, any answer (in the outbox) and
// the mailbox cursor, and commits. Handling the same message twice (same
// Message-ID) changes nothing.
type Processor struct {
	Store  *ballots.Store
	Tokens *token.Key
	Box    message.Mailbox
	Logger *slog.Logger
	// Enqueued, when set, is called after a commit that enqueued mail.
	Enqueued func()
	// AnswersWait, when positive, holds back the answers to a batch of
	// messages the mailbox has more than AnswersBehind messages behind
	// (a wave of replies): they are queued to come due AnswersWait later,
	// and the reader makes them due as soon as it has read the mailbox
	// (ballots.ReleaseHeldAnswers), so that sending them does not slow
	// reading the votes; a wave longer than AnswersWait gets its answers
	// AnswersWait late.
	AnswersWait   time.Duration
	AnswersBehind int
	// held is set when a committed batch held its answers back; swept
	// once this process has looked for answers a process before it held
	// (and died holding).
	held, swept atomic.Bool
	// Staff are the BALLOTD_STAFF addresses: they get vetting notices and
	// may send vetting commands.
	Staff []string
	// Questions are the policy questionnaire's (BALLOTD_QUESTIONNAIRE);
	// none turns the questionnaire step off.
	Questions []string
	// Now, when set, is the clock nominations are checked against.
	Now func() time.Time
	// AuthservID is the authserv-id of the trusted server whose
	// Authentication-Results decide whether a vote's From is authentic
	// (BALLOTD_AUTHSERV_ID); "" trusts every From.
	AuthservID string
	// StrangerAnswersPerHour caps the automatic answers to addresses that
	// are not members, leaders or staff, all together, per hour
	// (BALLOTD_STRANGER_ANSWERS_PER_HOUR): 0 is
	// DefaultStrangerAnswersPerHour, negative is none at all.
	StrangerAnswersPerHour int
	// Handled, when set, is called with each committed result (metrics).
	Handled func(Result)
}

// messageKey is what makes two readings of a message the same message.
func messageKey(m *message.Message, raw []byte) string {
	if m != nil && m.MessageID != "" {
		return "mid:" + strings.ToLower(m.MessageID)
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Handle applies d's effect in one transaction. An error means nothing was
// committed and the message must be handled again later.
func (p *Processor) Handle(ctx context.Context, d Delivery) (Result, error) {
	pd := p.parse(d)
	var res Result
	enqueued := false
	err := p.Store.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := ballots.AdvanceCursor(ctx, tx, d.Mailbox, d.UIDValidity, d.UID); err != nil {
			return err
		}
		var err error
		res, enqueued, err = p.handleIn(ctx, tx, pd)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("handle uid %d of %s: %w", d.UID, d.Mailbox, err)
	}
	p.handled(pd, res, enqueued)
	return res, nil
}

// HandleBatch applies the effects of ds, messages of one mailbox in UID
// order, in one transaction with the mailbox cursor, and returns their
// results. It reads them on every core first, and loads the ballots their
// reply addresses name in one statement. When the batch's transaction
// fails, each message is handled alone in its own (Handle), so one that
// cannot be handled neither blocks nor loses its batch-mates: a message
// that fails alone twice is recorded as quarantined with the error, for
// staff to replay. An error means the database could not record even that;
// results then hold what committed before it, in order.
func (p *Processor) HandleBatch(ctx context.Context, ds []Delivery) ([]Result, error) {
	return p.handleBatch(ctx, p.parseAll(ds), 0)
}

// handleBatch is HandleBatch of messages already read, with behind more
// waiting in the mailbox after them (AnswersWait).
func (p *Processor) handleBatch(ctx context.Context, pds []parsed, behind int) ([]Result, error) {
	if len(pds) == 0 {
		return nil, nil
	}
	results := make([]Result, len(pds))
	enqueued := make([]bool, len(pds))
	var wait time.Duration
	if p.AnswersWait > 0 && behind > p.AnswersBehind {
		wait = p.AnswersWait
	}
	err := p.Store.InTx(ctx, func(tx *sqlx.Tx) error {
		return p.batchIn(ctx, tx, pds, results, enqueued, wait)
	})
	if err == nil {
		if wait > 0 && slices.Contains(enqueued, true) {
			p.held.Store(true)
		}
		for i, pd := range pds {
			p.handled(pd, results[i], enqueued[i])
		}
		return results, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("handle %d messages of %s: %w", len(pds), pds[0].Mailbox, err)
	}
	p.logger().Warn("a batch could not be handled in one transaction; handling its messages one at a time",
		"mailbox", pds[0].Mailbox, "first_uid", pds[0].UID, "messages", len(pds), "err", err)
	results = results[:0]
	for _, pd := range pds {
		res, err := p.handleAlone(ctx, pd)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// batchIn is HandleBatch's transaction: the cursor to the batch's last
// UID, every message recorded, the ballots their reply addresses name and
// the votes standing on them loaded, then each message applied in order,
// and their outcomes recorded.
func (p *Processor) batchIn(ctx context.Context, tx *sqlx.Tx, pds []parsed, results []Result, enqueued []bool, wait time.Duration) error {
	last := pds[0]
	ins := make([]ballots.Inbound, len(pds))
	for i, pd := range pds {
		if pd.UID > last.UID {
			last = pd
		}
		ins[i] = pd.inbound()
	}
	if err := ballots.AdvanceCursor(ctx, tx, last.Mailbox, last.UIDValidity, last.UID); err != nil {
		return err
	}
	ids, err := ballots.RecordInbounds(ctx, tx, ins)
	if err != nil {
		return err
	}
	b, err := p.prefetch(ctx, tx, pds)
	if err != nil {
		return err
	}
	b.wait = wait
	for i, pd := range pds {
		if ids[i] == 0 {
			results[i] = Result{Outcome: OutcomeDuplicate}
			continue
		}
		if pd.class != message.ClassVote {
			// Its answers go out after the votes' before it, as they
			// would one message at a time.
			if err := b.flush(ctx, tx); err != nil {
				return err
			}
		}
		b.raw = pd.Raw
		if results[i], enqueued[i], err = p.handleRecorded(ctx, tx, pd, ids[i], b); err != nil {
			return err
		}
		if !keepsBallots(results[i].Class) {
			// A staff command, a nomination, a bounce… may change what
			// the loaded ballots say: the rest load their own.
			b.ballots, b.standing = nil, nil
		}
	}
	if err := b.flush(ctx, tx); err != nil {
		return err
	}
	return ballots.FinishInbounds(ctx, tx, b.finished, b.outcomes)
}

// pendingClaim is an answer a batch holds (mails[mail]) that is yet to be
// claimed against the answer policy: claim, under caps.
type pendingClaim struct {
	mail  int
	caps  []ballots.AnswerCap
	claim ballots.AnswerClaim
}

// flush records the votes and enqueues the answers the batch holds.
func (b *batchState) flush(ctx context.Context, tx *sqlx.Tx) error {
	if err := ballots.RecordVotes(ctx, tx, b.votes, b.receipts); err != nil {
		return err
	}
	b.votes, b.receipts = b.votes[:0], b.receipts[:0]
	if err := b.claimAnswers(ctx, tx); err != nil {
		return err
	}
	for i := range b.mails {
		b.mails[i].Wait = b.wait
	}
	err := ballots.EnqueueAll(ctx, tx, b.mails)
	b.mails = b.mails[:0]
	return err
}

// releaseHeld makes due the answers batches held back (AnswersWait), if
// any were, and wakes the outbox: the reader has read the mailbox. The
// first time, it looks for them whether or not this process held any: a
// process killed while holding answers leaves them to the next.
func (p *Processor) releaseHeld(ctx context.Context) error {
	if !p.held.Swap(false) && p.swept.Load() {
		return nil
	}
	n, err := p.Store.ReleaseHeldAnswers(ctx)
	if err != nil {
		p.held.Store(true)
		return err
	}
	p.swept.Store(true)
	if n > 0 {
		p.logger().Info("answers held while the mailbox was read go out now", "answers", n)
		if p.Enqueued != nil {
			p.Enqueued()
		}
	}
	return nil
}

// claimAnswers claims the batch's pending answers against the answer
// policy (ballots.ClaimAnswers, in the order they were made, as one
// message at a time would), takes out of mails those refused, records
// them (ballots.HoldAnswer) and says why in their messages' outcomes,
// which the batch holds too: every pending answer's message was finished
// before the flush.
func (b *batchState) claimAnswers(ctx context.Context, tx *sqlx.Tx) error {
	if len(b.claims) == 0 {
		return nil
	}
	cs := make([]ballots.AnswerClaim, len(b.claims))
	for i, c := range b.claims {
		cs[i] = c.claim
	}
	got, err := ballots.ClaimAnswers(ctx, tx, cs)
	if err != nil {
		return err
	}
	refused := map[int]bool{}
	for i, c := range b.claims {
		if got[i].OK {
			continue
		}
		mail := b.mails[c.mail]
		why := refusedWhy(mail.Kind(), c.claim.Reason, c.caps, got[i])
		if err := ballots.HoldAnswer(ctx, tx, mail.InboundID, mail.Recipient, mail.Kind(), why); err != nil {
			return err
		}
		refused[c.mail] = true
		for j, id := range b.finished {
			if id == mail.InboundID {
				noteAnswer(&b.outcomes[j], why)
			}
		}
	}
	b.claims = b.claims[:0]
	if len(refused) > 0 {
		kept := b.mails[:0]
		for i, m := range b.mails {
			if !refused[i] {
				kept = append(kept, m)
			}
		}
		b.mails = kept
	}
	return nil
}

// keepsBallots reports whether handling a message of class leaves every
// ballot, race, candidate and member as it was (but for votes, which
// batchState.voted follows).
func keepsBallots(class message.Class) bool {
	switch class {
	case message.ClassVote, message.ClassAutoReply, message.ClassLoop, message.ClassReadReceipt, message.ClassChallenge, message.ClassUnknown:
		return true
	}
	return false
}

// prefetch loads, in tx, the ballots the reply addresses of pds name, and
// the votes standing on them.
func (p *Processor) prefetch(ctx context.Context, tx *sqlx.Tx, pds []parsed) (*batchState, error) {
	var ids []int64
	for _, pd := range pds {
		if pd.m == nil {
			continue
		}
		if tag, ok := message.FindTag(pd.m, p.Box); ok && tag.Kind == token.Ballot {
			if id, err := p.Tokens.ID(tag.Token); err == nil {
				ids = append(ids, id)
			}
		}
	}
	b := &batchState{}
	var err error
	if b.ballots, err = ballots.BallotsForVote(ctx, tx, ids); err != nil {
		return nil, err
	}
	if b.standing, err = ballots.StandingVotes(ctx, tx, ids); err != nil {
		return nil, err
	}
	return b, nil
}

// standingVote is ballots.StandingVote, from the batch's when it has
// loaded the ballot's.
func (b *batchState) standingVote(ctx context.Context, tx *sqlx.Tx, id int64) (ballots.Standing, bool, error) {
	if b != nil && b.standing != nil {
		if _, loaded := b.ballots[id]; loaded {
			s, ok := b.standing[id]
			return s, ok, nil
		}
	}
	return ballots.StandingVote(ctx, tx, id)
}

// recordVote is ballots.RecordVote, or in a batch, the vote held to be
// recorded with the batch's (before the next message of another class, or
// at its end), and standing from now on for the batch's next messages, as
// it will in the database: the last vote recorded on a ballot stands.
func (b *batchState) recordVote(ctx context.Context, tx *sqlx.Tx, v ballots.VoteInput) (string, error) {
	if b == nil || !v.CastAt.IsZero() {
		return ballots.RecordVote(ctx, tx, v)
	}
	receipt := ballots.NewReceipt()
	b.votes, b.receipts = append(b.votes, v), append(b.receipts, receipt)
	if _, loaded := b.ballots[v.BallotID]; loaded && b.standing != nil {
		b.standing[v.BallotID] = ballots.Standing{Choice: v.Choice, CandidateID: v.CandidateID, Raw: b.raw}
	} else {
		// Not loaded: the next message on it reads the database, so the
		// vote must be there first.
		if err := b.flush(ctx, tx); err != nil {
			return "", err
		}
	}
	return receipt, nil
}

// finish records message id's outcome: in tx now, or with the batch's.
func (b *batchState) finish(ctx context.Context, tx *sqlx.Tx, id int64, out ballots.Outcome) error {
	if b == nil {
		return ballots.FinishInbound(ctx, tx, id, out)
	}
	b.finished, b.outcomes = append(b.finished, id), append(b.outcomes, out)
	return nil
}

// handleAlone handles pd in a transaction of its own. When that fails
// twice for the message itself (not for the database: ballots.Transient),
// it records pd as quarantined with the error, so that the mailbox reads
// on; staff replay it after a fix.
func (p *Processor) handleAlone(ctx context.Context, pd parsed) (Result, error) {
	var err error
	for range 2 {
		var res Result
		if res, err = p.Handle(ctx, pd.Delivery); err == nil {
			return res, nil
		}
		if ballots.Transient(err) {
			// The database, not the message: read on later.
			return res, err
		}
	}
	res := Result{Class: message.ClassUnknown, Outcome: OutcomeQuarantined}
	qerr := p.Store.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := ballots.AdvanceCursor(ctx, tx, pd.Mailbox, pd.UIDValidity, pd.UID); err != nil {
			return err
		}
		id, rerr := ballots.RecordInbound(ctx, tx, pd.inbound())
		if errors.Is(rerr, ballots.ErrDuplicate) {
			res = Result{Outcome: OutcomeDuplicate}
			return nil
		}
		if rerr != nil {
			return rerr
		}
		res.InboundID = id
		return ballots.FinishInbound(ctx, tx, id, ballots.Outcome{Class: string(message.ClassUnknown), Outcome: OutcomeQuarantined,
			Detail: "could not be handled: " + err.Error(), Quarantined: true})
	})
	if qerr != nil {
		return Result{}, fmt.Errorf("%w (and could not quarantine it: %w)", err, qerr)
	}
	p.logger().Error("message could not be handled; quarantined for staff to replay", "uid", pd.UID, "inbound_id", res.InboundID, "err", err)
	p.handled(pd, res, false)
	return res, nil
}

// parseAll reads and classifies ds with the pure reader on every core, in
// order.
func (p *Processor) parseAll(ds []Delivery) []parsed {
	pds := make([]parsed, len(ds))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(ds)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(ds); i = int(next.Add(1)) - 1 {
				pds[i] = p.parse(ds[i])
			}
		})
	}
	wg.Wait()
	return pds
}

// parsed is a delivery read by the pure reader (m, or why it could not be).
type parsed struct {
	Delivery
	m     *message.Message
	perr  error
	class message.Class // m's class ("" when m could not be read)
}

// parse reads d and, when it could, classifies it.
func (p *Processor) parse(d Delivery) parsed {
	m, err := message.Parse(d.Raw)
	pd := parsed{Delivery: d, m: m, perr: err}
	if err == nil {
		pd.class = message.Classify(m, p.Box)
	}
	return pd
}

// handleIn records message pd in tx and applies its effect (the cursor is
// the caller's).
func (p *Processor) handleIn(ctx context.Context, tx *sqlx.Tx, pd parsed) (Result, bool, error) {
	id, err := ballots.RecordInbound(ctx, tx, pd.inbound())
	if errors.Is(err, ballots.ErrDuplicate) {
		return Result{Outcome: OutcomeDuplicate}, false, nil
	}
	if err != nil {
		return Result{}, false, err
	}
	return p.handleRecorded(ctx, tx, pd, id, nil)
}

// handleRecorded applies the effect of message pd, recorded as id, in tx
// (in batch b, or nil).
func (p *Processor) handleRecorded(ctx context.Context, tx *sqlx.Tx, pd parsed, id int64, b *batchState) (Result, bool, error) {
	res := Result{InboundID: id, Class: pd.class, batch: b}
	_, enqueued, err := p.process(ctx, tx, id, pd.m, pd.perr, &res)
	res.batch = nil
	return res, enqueued, err
}

// inbound is pd as the store records it.
func (pd parsed) inbound() ballots.Inbound {
	in := ballots.Inbound{MessageKey: messageKey(pd.m, pd.Raw), Mailbox: pd.Mailbox, UIDValidity: pd.UIDValidity, UID: pd.UID, Raw: pd.Raw}
	if pd.m != nil {
		in.From, in.Subject = pd.m.From, pd.m.Subject
	}
	return in
}

// handled logs a committed result and tells whoever listens.
func (p *Processor) handled(pd parsed, res Result, enqueued bool) {
	mid := ""
	if pd.m != nil {
		mid = pd.m.MessageID
	}
	p.logger().Info("message handled", "uid", pd.UID, "message_id", mid, "class", res.Class, "outcome", res.Outcome, "race", res.Race)
	if p.Handled != nil {
		p.Handled(res)
	}
	if enqueued && p.Enqueued != nil {
		p.Enqueued()
	}
}

// process applies message id (parsed as m, or perr) in tx and records its
// outcome. It returns the outcome and whether it enqueued mail.
func (p *Processor) process(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, perr error, res *Result) (ballots.Outcome, bool, error) {
	var out ballots.Outcome
	enqueued := false
	if perr != nil {
		res.Class = message.ClassUnknown
		out = ballots.Outcome{Class: string(message.ClassUnknown), Outcome: OutcomeQuarantined, Detail: "unreadable message: " + perr.Error(), Quarantined: true}
	} else {
		if res.Class == "" {
			res.Class = message.Classify(m, p.Box)
		}
		var err error
		out, enqueued, err = p.apply(ctx, tx, id, m, res.Class, res)
		if err != nil {
			return out, false, err
		}
	}
	res.Outcome = out.Outcome
	return out, enqueued, res.batch.finish(ctx, tx, id, out)
}

// Replay applies stored message id again, in one transaction, as if it had
// just arrived: after a fix, or after the race it was about opened. Its
// recorded outcome is replaced. A message that already cast a vote is not
// applied again (its vote counts once); its outcome stays "counted".
func (p *Processor) Replay(ctx context.Context, id int64) (Result, error) {
	var res Result
	enqueued := false
	err := p.Store.InTx(ctx, func(tx *sqlx.Tx) error {
		res, enqueued = Result{InboundID: id}, false
		raw, received, err := ballots.InboundRaw(ctx, tx, id)
		if err != nil {
			return err
		}
		res.received = received
		receipt, err := ballots.VoteOfInbound(ctx, tx, id)
		if err != nil {
			return err
		}
		if receipt != "" {
			res.Class, res.Outcome = message.ClassVote, OutcomeCounted
			return ballots.FinishInbound(ctx, tx, id, ballots.Outcome{Class: string(message.ClassVote), Outcome: OutcomeCounted,
				Detail: "already counted (receipt " + receipt + "); replay changed nothing"})
		}
		m, perr := message.Parse(raw)
		if m != nil {
			if err := ballots.SetInboundHeader(ctx, tx, id, m.From, m.Subject); err != nil {
				return err
			}
		}
		_, enqueued, err = p.process(ctx, tx, id, m, perr, &res)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("replay inbound %d: %w", id, err)
	}
	p.logger().Info("message replayed", "inbound_id", id, "class", res.Class, "outcome", res.Outcome, "race", res.Race)
	if enqueued && p.Enqueued != nil {
		p.Enqueued()
	}
	return res, nil
}

func (p *Processor) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger
}

// apply decides what the message does, by class. It returns the outcome to
// record and whether it enqueued mail.
func (p *Processor) apply(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, class message.Class, res *Result) (ballots.Outcome, bool, error) {
	out := ballots.Outcome{Class: string(class)}
	switch class {
	case message.ClassBounce:
		// Never answered; mapped back to the message it reports on.
		return p.bounce(ctx, tx, id, m)
	case message.ClassAutoReply, message.ClassLoop, message.ClassReadReceipt, message.ClassChallenge:
		// Machines are never answered: no mail loops, no backscatter.
		out.Outcome = OutcomeIgnored
		return out, false, nil
	case message.ClassVote:
		return p.vote(ctx, tx, id, m, res)
	case message.ClassNomination, message.ClassJoin, message.ClassConfirm, message.ClassUnsubscribe, message.ClassStaff, message.ClassQuestionnaire:
		return p.front(ctx, tx, id, m, class)
	case message.ClassResend:
		return p.resend(ctx, tx, id, m)
	case message.ClassUnknown:
		out.Outcome, out.Quarantined = OutcomeQuarantined, true
		out.Detail = "no ballot, form or command found in this message"
		if auth := message.CheckSender(m.Header, p.AuthservID, m.From); !auth.OK {
			// Its From may be forged: no answer to it.
			noteAnswer(&out, "sender not authenticated: "+auth.Detail)
			return out, false, nil
		}
		sent, why, err := p.answer(ctx, tx, m, ballots.Mail{Recipient: m.From, InboundID: id,
			Payload: templates.UnmatchedMail{Subject: m.Subject, Thread: thread(m)}}, string(templates.KindUnmatched), 1)
		noteAnswer(&out, why)
		return out, sent, err
	default:
		// Routed to a handler this build does not have yet: kept for staff.
		out.Outcome, out.Quarantined = OutcomeQuarantined, true
		out.Detail = fmt.Sprintf("%s messages are not handled yet", class)
		return out, false, nil
	}
}

// findBallot returns the ballot a reply is about, with its race (locked
// against the close) and candidates. The ballot's own reply address (the
// plus-address token) decides; only when it is missing or does not verify
// do the ballot Message-ID the reply names (In-Reply-To, References) and a
// "Ballot code:" in its text count, and a ballot found by a header counts
// only when the reply's From is that ballot's voter. Found is false when
// none does.
func (p *Processor) findBallot(ctx context.Context, tx *sqlx.Tx, m *message.Message, pre map[int64]ballots.Ballot) (ballots.Ballot, bool, error) {
	if tag, ok := message.FindTag(m, p.Box); ok && tag.Kind == token.Ballot {
		b, ok, err := p.ballotOfToken(ctx, tx, tag.Token, pre)
		if ok || err != nil {
			return b, ok, err
		}
	}
	for _, local := range message.OwnReferences(m, p.Box) {
		oid, err := p.Tokens.Open(token.MessageID, local)
		if err != nil {
			continue
		}
		bid, err := ballots.BallotOfMessage(ctx, tx, oid)
		if errors.Is(err, ballots.ErrNotFound) {
			continue
		}
		if err != nil {
			return ballots.Ballot{}, false, err
		}
		b, err := ballots.BallotForVote(ctx, tx, bid)
		if err != nil {
			return b, false, err
		}
		if strings.EqualFold(m.From, b.MemberEmail) {
			return b, true, nil
		}
	}
	for _, tok := range message.BallotCodes(m) {
		b, ok, err := p.ballotOfToken(ctx, tx, tok, pre)
		if ok || err != nil {
			return b, ok, err
		}
	}
	return ballots.Ballot{}, false, nil
}

// ballotOfToken returns the ballot a ballot token names, if it verifies;
// from pre when it holds it.
func (p *Processor) ballotOfToken(ctx context.Context, tx *sqlx.Tx, tok string, pre map[int64]ballots.Ballot) (ballots.Ballot, bool, error) {
	bid, err := p.Tokens.ID(tok)
	if err != nil {
		return ballots.Ballot{}, false, nil
	}
	if b, ok := pre[bid]; ok {
		return b, p.Tokens.Verify(token.Ballot, tok, b.Nonce), nil
	}
	// The ballot with its nonce, race and candidates in one go: the
	// token is checked against the nonce it brings.
	b, err := ballots.BallotForVote(ctx, tx, bid)
	if errors.Is(err, ballots.ErrNotFound) {
		return ballots.Ballot{}, false, nil
	}
	if err != nil {
		return ballots.Ballot{}, false, err
	}
	if p.Tokens.Verify(token.Ballot, tok, b.Nonce) {
		return b, true, nil
	}
	return ballots.Ballot{}, false, nil
}

func (p *Processor) vote(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, res *Result) (ballots.Outcome, bool, error) {
	out := ballots.Outcome{Class: string(message.ClassVote)}
	var pre map[int64]ballots.Ballot
	if res.batch != nil {
		pre = res.batch.ballots
	}
	b, found, err := p.findBallot(ctx, tx, m, pre)
	if err != nil {
		return out, false, err
	}
	if !found {
		out.Outcome, out.Quarantined = OutcomeUnmatched, true
		out.Detail = "no valid ballot token, ballot Message-ID or ballot code"
		sent, why, err := p.answerAs(ctx, tx, m, ballots.Mail{Recipient: m.From, InboundID: id,
			Payload: templates.UnmatchedMail{Subject: m.Subject, Thread: thread(m)}}, string(templates.KindUnmatched), 1, nil, false, res.batch)
		noteAnswer(&out, why)
		return out, sent, err
	}
	res.Race = b.RaceCode
	auth := message.CheckSender(m.Header, p.AuthservID, m.From)
	reply := ballots.Mail{Recipient: b.MemberEmail, MemberID: b.MemberID, BallotID: b.ID, RaceID: b.RaceID, InboundID: id}
	switch {
	case !strings.EqualFold(m.From, b.MemberEmail):
		// Not the voter: not counted, and the notice goes to the voter's own
		// registered address, never to the sender.
		out.Outcome = OutcomeNotVoter
		out.Detail = fmt.Sprintf("From %q is not the ballot's voter", m.From)
		reply.Payload = templates.NotVoterMail{Sender: m.From}
	case !auth.OK:
		// The voter's address, but the trusted server could not show it
		// sent this: not counted; the notice goes to the registered
		// address, where the real voter reads it.
		// Kept in quarantine: if the trusted server was misconfigured,
		// staff fix it and replay.
		out.Outcome, out.Detail = OutcomeUnauthenticated, "sender not authenticated: "+auth.Detail
		out.Quarantined = true
		reply.Payload = templates.UnauthenticatedMail{Sender: m.From}
	case b.RaceStatus != ballots.RaceOpen:
		out.Outcome = OutcomeClosed
		reply.Payload = templates.ClosedMail{Thread: thread(m)}
	default:
		choices := make([]message.Choice, len(b.Candidates))
		for i, c := range b.Candidates {
			choices[i] = message.Choice{Number: int(c.Number.Int64), Name: c.Name}
		}
		ans := message.ReadAnswer(m, choices, b.MemberName)
		v, text, ok := voteOf(ans, b.Candidates)
		if !ok {
			out.Outcome, out.Detail = OutcomeUnclear, ans.Reason
			reason := ans.Reason
			if reason == "" {
				reason = "we found no answer we could read"
			}
			reply.Payload = templates.ClarifyMail{Reason: reason, Quote: ans.Quote, Thread: thread(m)}
			break
		}
		v.BallotID, v.InboundID, v.CastAt = b.ID, id, res.received
		prev, voted, err := res.batch.standingVote(ctx, tx, b.ID)
		if err != nil {
			return out, false, err
		}
		same := voted && prev.Choice == v.Choice && prev.CandidateID == v.CandidateID
		if voted && !same && res.received.IsZero() && writtenBefore(m, prev.Raw) {
			// A reply cannot undo a later vote: one written (by its Date)
			// before the reply that cast the standing vote is a replay or
			// a late delivery, and is not counted.
			out.Outcome, out.Quarantined = OutcomeStale, true
			out.Detail = "written before the vote that stands; not counted (a replayed or late reply)"
			reply.Payload = templates.NoChangeMail{Choice: choiceText(prev, b.Candidates), Stale: true, Thread: thread(m)}
			break
		}
		receipt, err := res.batch.recordVote(ctx, tx, v)
		if err != nil {
			return out, false, err
		}
		out.Outcome = OutcomeCounted
		if !res.received.IsZero() {
			later, err := ballots.LaterVote(ctx, tx, b.ID, res.received)
			if err != nil {
				return out, false, err
			}
			if later {
				// A replayed vote older than the voter's latest: kept in the
				// history, and the latest stands; a receipt would mislead.
				out.Detail = "replayed vote, cast before the voter's latest vote, which stands"
				return out, false, nil
			}
		}
		if same {
			// The same vote again: recorded, nothing changes, and a short
			// note says so (the last receipt holds).
			out.Detail = "the same vote as the standing one; no new receipt"
			reply.Payload = templates.NoChangeMail{Choice: text, Thread: thread(m)}
			break
		}
		reply.Payload = templates.ReceiptMail{Choice: text, Receipt: receipt, Read: ans.Read, Thread: thread(m)}
	}
	reason, slots := fmt.Sprintf("%s:%d", reply.Kind(), b.ID), 1
	if k := reply.Kind(); k == templates.KindReceipt || k == templates.KindNoChange {
		// Every changed vote gets its receipt, so the last receipt a voter
		// holds names the vote that stands, up to a bound against floods.
		slots = maxReceiptsPerDay
	}
	// The voter's own address is known when they are an active member.
	known := b.MemberActive && strings.EqualFold(reply.Recipient, b.MemberEmail)
	sent, why, err := p.answerAs(ctx, tx, m, reply, reason, slots, nil, known, res.batch)
	noteAnswer(&out, why)
	return out, sent, err
}

// writtenBefore reports whether m was written before the message
// prev (the raw message that cast the standing vote), by their Date
// headers. A Date in the future counts as now; a message without a Date is
// never "before".
func writtenBefore(m *message.Message, prev []byte) bool {
	if m.Date.IsZero() || len(prev) == 0 {
		return false
	}
	pm, err := message.Parse(prev)
	if err != nil || pm.Date.IsZero() {
		return false
	}
	now := time.Now()
	at, prevAt := m.Date, pm.Date
	if at.After(now) {
		at = now
	}
	if prevAt.After(now) {
		prevAt = now
	}
	return at.Before(prevAt)
}

// choiceText is the standing vote in the words of a receipt.
func choiceText(s ballots.Standing, cs []ballots.Candidate) string {
	for _, c := range cs {
		if c.ID != s.CandidateID {
			continue
		}
		switch s.Choice {
		case ballots.ChoiceYes:
			return "YES: endorse " + c.Name
		case ballots.ChoiceNo:
			return "NO: do not endorse " + c.Name
		case ballots.ChoiceCandidate:
			return fmt.Sprintf("%d. %s", c.Number.Int64, c.Name)
		}
	}
	return "NONE of the candidates"
}

// maxReceiptsPerDay bounds the receipts for one ballot in a day: a voter
// who changes their vote more often than this stops getting receipts.
const maxReceiptsPerDay = 10

// voteOf turns an answer into the vote to record and the words the receipt
// repeats it in; ok is false when the answer is not a vote on this ballot.
func voteOf(a message.Answer, cs []ballots.Candidate) (ballots.VoteInput, string, bool) {
	var v ballots.VoteInput
	switch {
	case a.Kind == message.AnswerYes && len(cs) == 1:
		v.Choice, v.CandidateID = ballots.ChoiceYes, cs[0].ID
		return v, "YES: endorse " + cs[0].Name, true
	case a.Kind == message.AnswerNo && len(cs) == 1:
		v.Choice, v.CandidateID = ballots.ChoiceNo, cs[0].ID
		return v, "NO: do not endorse " + cs[0].Name, true
	case a.Kind == message.AnswerNone && len(cs) > 1:
		v.Choice = ballots.ChoiceNone
		return v, "NONE of the candidates", true
	case a.Kind == message.AnswerCandidate && len(cs) > 1:
		for _, c := range cs {
			if int(c.Number.Int64) == a.Number {
				v.Choice, v.CandidateID = ballots.ChoiceCandidate, c.ID
				return v, fmt.Sprintf("%d. %s", a.Number, c.Name), true
			}
		}
	}
	return v, "", false
}
