package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"regexp"
	"sync"
	"time"
)

// Event types Slipway sends. Only stage.moved makes this receiver act; the
// others are logged, so that you can see what arrives and choose what to
// subscribe to.
const (
	typeStageMoved = "stage.moved"
	typeTest       = "webhook.test" // sent from Slipway's UI or API to try an endpoint; no model
)

// envelope is what every event looks like. Unknown fields are ignored, so
// that Slipway can add some without breaking this receiver.
type envelope struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`        // evt_…, the event (webhook-id names the message that carries it)
	Timestamp string          `json:"timestamp"` // when the change happened, RFC 3339
	Data      json.RawMessage `json:"data"`
}

// modelEvent is the part of data every model event has.
type modelEvent struct {
	Model string `json:"model"`
	Seq   int64  `json:"seq"` // per model, from 1, in the order the changes committed
}

// stageMoved is the data of a stage.moved event: stage Stage of model Model
// now holds version Version.
type stageMoved struct {
	Model           string     `json:"model"`
	Seq             int64      `json:"seq"`
	Stage           string     `json:"stage"`
	Version         int64      `json:"version"`
	PreviousVersion *int64     `json:"previous_version"` // null when the stage held nothing
	Reason          string     `json:"reason"`
	PromotionID     int64      `json:"promotion_id"`
	Override        bool       `json:"override"`
	MovedBy         string     `json:"moved_by"`
	VersionURL      string     `json:"version_url"`
	Artifacts       []artifact `json:"artifacts"`
}

// artifact is one file of a version.
type artifact struct {
	Path   string `json:"path"`   // relative, '/'-separated, e.g. weights/model.pt
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // hex
	URL    string `json:"url"`    // presigned GET URL, short-lived: use it at once
}

// Options configure a Receiver. Tests set Now, Client and RememberIDs.
type Options struct {
	Secret          string   // whsec_…
	Dir             string   // where versions are installed: <Dir>/<model>/<version>/<path>
	Stages          []string // stages to act on
	Tolerance       time.Duration
	DownloadTimeout time.Duration
	Logger          *log.Logger

	Now         func() time.Time // the clock; nil means time.Now
	Client      *http.Client     // for downloads; nil means newDownloadClient()
	BaseContext context.Context  // cancelling it aborts downloads (shutdown); nil means Background
	RememberIDs int              // how many webhook-ids to remember; 0 means 10,000
}

// Receiver is the http.Handler Slipway posts to.
type Receiver struct {
	key             []byte
	dir             string
	stages          map[string]bool
	tolerance       time.Duration
	downloadTimeout time.Duration
	log             *log.Logger
	now             func() time.Time
	client          *http.Client
	base            context.Context
	ids             *recentIDs

	mu         sync.Mutex
	modelLocks map[string]*sync.Mutex // one per model, never removed: there are few models
	highest    map[seqKey]int64       // highest seq applied, per stream (see seqKey)
}

// seqKey names a stream of events whose order matters. For stage.moved it
// is the model and the stage: a newer move of the same stage makes an older
// one obsolete, but an event about another stage, or of another type, does
// not. (Were the key the model alone, a production move answered 502 and
// retried would be dropped as stale once any later event of the model, say
// a staging move or a new version, had been accepted: production would
// never get the version.) Other events use the model alone (stage "").
type seqKey struct {
	model, stage string
}

// NewReceiver checks opts and returns a Receiver.
func NewReceiver(opts Options) (*Receiver, error) {
	key, err := decodeSecret(opts.Secret)
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" || len(opts.Stages) == 0 || opts.Tolerance <= 0 || opts.DownloadTimeout <= 0 {
		return nil, errors.New("receiver: Dir, Stages, Tolerance and DownloadTimeout are required")
	}
	r := &Receiver{
		key:             key,
		dir:             opts.Dir,
		stages:          map[string]bool{},
		tolerance:       opts.Tolerance,
		downloadTimeout: opts.DownloadTimeout,
		log:             opts.Logger,
		now:             opts.Now,
		client:          opts.Client,
		base:            opts.BaseContext,
		ids:             newRecentIDs(opts.RememberIDs),
		modelLocks:      map[string]*sync.Mutex{},
		highest:         map[seqKey]int64{},
	}
	for _, s := range opts.Stages {
		r.stages[s] = true
	}
	if r.log == nil {
		r.log = log.New(io.Discard, "", 0)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.client == nil {
		r.client = newDownloadClient()
	}
	if r.base == nil {
		r.base = context.Background()
	}
	return r, nil
}

// ServeHTTP authenticates a delivery, then handles its event. The status
// is the whole conversation with Slipway: 2xx means "done, do not send it
// again"; anything else means "send it again later" (with backoff). This
// receiver never answers 410 Gone, which would disable the endpoint.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d, err := verifyRequest(w, r, rc.key, rc.now(), rc.tolerance)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			he = fail(http.StatusInternalServerError, "%v", err)
		}
		rc.log.Printf("refused a delivery from %s: %d %s", r.RemoteAddr, he.status, he.msg)
		reply(w, he.status, he.msg)
		return
	}
	status, msg := rc.handle(d)
	if status >= 300 {
		rc.log.Printf("webhook-id %s: answering %d: %s", d.id, status, msg)
	}
	reply(w, status, msg)
}

func reply(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// handle acts on an authenticated delivery and returns the status to answer.
func (rc *Receiver) handle(d delivery) (int, string) {
	// Idempotency. Slipway sends a message again when it did not get a 2xx
	// in time, even if we did the work (the answer may have been lost), and
	// keeps webhook-id across those attempts. A message already done is
	// acknowledged without doing anything again.
	if rc.ids.Has(d.id) {
		rc.log.Printf("duplicate webhook-id %s: already processed", d.id)
		return http.StatusOK, "already processed"
	}

	var ev envelope
	if err := json.Unmarshal(d.body, &ev); err != nil {
		// Signed by Slipway but not JSON: a bug on the sending side. Not
		// 2xx, so that it shows as failing in Slipway's delivery log.
		return http.StatusBadRequest, "body is not a JSON event: " + err.Error()
	}
	if ev.Type == typeStageMoved {
		return rc.handleStageMoved(d.id, ev)
	}
	return rc.handleOther(d.id, ev)
}

// handleOther logs an event this receiver does not act on and answers 204.
// An event older than one already seen for its model is logged as stale.
func (rc *Receiver) handleOther(id string, ev envelope) (int, string) {
	if ev.Type == typeTest {
		rc.log.Printf("test event %s received (webhook-id %s): the endpoint works", ev.ID, id)
		rc.ids.Add(id)
		return http.StatusNoContent, ""
	}
	var m modelEvent
	_ = json.Unmarshal(ev.Data, &m) // only model and seq are needed, and they may be absent
	if m.Model != "" && m.Seq > 0 {
		if last, ok := rc.advance(seqKey{model: m.Model}, m.Seq); !ok {
			rc.log.Printf("stale %s event %s: model %s seq %d, already at %d (webhook-id %s)", ev.Type, ev.ID, m.Model, m.Seq, last, id)
			rc.ids.Add(id)
			return http.StatusOK, "stale"
		}
		rc.log.Printf("event %s %s: model %s seq %d (webhook-id %s): nothing to do", ev.Type, ev.ID, m.Model, m.Seq, id)
	} else {
		rc.log.Printf("event %s %s (webhook-id %s): nothing to do", ev.Type, ev.ID, id)
	}
	rc.ids.Add(id)
	return http.StatusNoContent, ""
}

// handleStageMoved installs the version a served stage now holds.
//
// Answers: 204 for a stage not served; 200 once the version is in place,
// and for a duplicate or a stale event; 400/422 for a payload that breaks
// the contract; 502 when a download fails or does not match its declared
// size or SHA-256 (Slipway retries: the next attempt may succeed); 503 when
// shutting down; 500 for a local failure (disk full, permissions).
func (rc *Receiver) handleStageMoved(id string, ev envelope) (int, string) {
	var sm stageMoved
	if err := json.Unmarshal(ev.Data, &sm); err != nil {
		return http.StatusBadRequest, "stage.moved data: " + err.Error()
	}
	if !rc.stages[sm.Stage] {
		rc.log.Printf("stage.moved %s: model %s stage %s is not served here (webhook-id %s)", ev.ID, sm.Model, sm.Stage, id)
		rc.ids.Add(id)
		return http.StatusNoContent, ""
	}
	// Check everything before downloading anything: the model name and the
	// artifact paths become file names.
	if err := sm.validate(); err != nil {
		return http.StatusUnprocessableEntity, "refused stage.moved " + ev.ID + ": " + err.Error()
	}

	// One delivery per model at a time. Two deliveries of one message can
	// overlap (Slipway gave up waiting on the first, which is still
	// downloading, and sent it again); two moves of one model must not
	// write the same directory at once. A delivery that waited here finds
	// the work done by the one before it, in the checks below.
	unlock := rc.lockModel(sm.Model)
	defer unlock()

	if rc.ids.Has(id) {
		rc.log.Printf("duplicate webhook-id %s: already processed", id)
		return http.StatusOK, "already processed"
	}
	// Ordering. Deliveries are retried independently, so an old move can
	// arrive after a newer one (its first attempts failed). Acting on it
	// would roll the stage back, so an event whose seq is not above the
	// highest applied for this model and stage is stale: acknowledged,
	// logged, ignored.
	key := seqKey{model: sm.Model, stage: sm.Stage}
	if last, ok := rc.applied(key); ok && sm.Seq <= last {
		rc.log.Printf("stale stage.moved %s: model %s stage %s seq %d, already at %d (webhook-id %s)", ev.ID, sm.Model, sm.Stage, sm.Seq, last, id)
		rc.ids.Add(id)
		return http.StatusOK, "stale"
	}

	// The download runs under the receiver's context, not the request's:
	// if Slipway stops waiting (a big model), the download goes on, and the
	// retry, waiting on the model's lock above, then finds it done.
	ctx, cancel := context.WithTimeout(rc.base, rc.downloadTimeout)
	defer cancel()
	dir, err := rc.install(ctx, sm)
	if err != nil {
		var fe *fetchError
		switch {
		case rc.base.Err() != nil:
			return http.StatusServiceUnavailable, "shutting down"
		case errors.As(err, &fe):
			return http.StatusBadGateway, err.Error()
		default:
			return http.StatusInternalServerError, err.Error()
		}
	}
	if err := rc.activate(sm, dir); err != nil {
		return http.StatusInternalServerError, err.Error()
	}

	// Remember only now: a failure above must leave the message to be
	// retried, not marked done.
	rc.advance(key, sm.Seq)
	rc.ids.Add(id)
	return http.StatusOK, "loaded"
}

// activate is where the serving layer switches to the new version. This
// example only logs; replace the body with what your server needs: reload
// from dir, update a "current" symlink, call an admin endpoint... Keep the
// log line, or something like it: it is what operators grep for.
func (rc *Receiver) activate(sm stageMoved, dir string) error {
	rc.log.Printf("loaded model %s version %d for stage %s", sm.Model, sm.Version, sm.Stage)
	return nil
}

// modelName is Slipway's grammar of model names. Checking it here too
// keeps a name from ever being a path such as ".." or "a/b".
var modelName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// validate checks the fields used to act, before acting.
func (sm *stageMoved) validate() error {
	switch {
	case !modelName.MatchString(sm.Model):
		return fmt.Errorf("model %q is not a valid model name", sm.Model)
	case sm.Seq < 1:
		return fmt.Errorf("seq %d: want 1 or more", sm.Seq)
	case sm.Version < 1:
		return fmt.Errorf("version %d: want 1 or more", sm.Version)
	}
	return checkArtifacts(sm.Artifacts)
}

// lockModel locks model's mutex and returns the unlock.
func (rc *Receiver) lockModel(model string) func() {
	rc.mu.Lock()
	l, ok := rc.modelLocks[model]
	if !ok {
		l = new(sync.Mutex)
		rc.modelLocks[model] = l
	}
	rc.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// applied returns the highest seq applied for key.
func (rc *Receiver) applied(key seqKey) (int64, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	last, ok := rc.highest[key]
	return last, ok
}

// advance records seq for key when it is above the highest recorded, and
// reports whether it was; it returns the highest before the call.
func (rc *Receiver) advance(key seqKey, seq int64) (int64, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	last, ok := rc.highest[key]
	if ok && seq <= last {
		return last, false
	}
	rc.highest[key] = seq
	return last, true
}

// recentIDs remembers the last n webhook-ids processed, forgetting the
// oldest first, so that memory stays bounded however long the process runs.
// It must remember an id as long as Slipway may send that message again,
// i.e. over its retry schedule: at a few events a minute, 10,000 ids cover
// days. (The seq check catches an older message forgotten here anyway.)
type recentIDs struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string // the ids in the order added; next is the oldest
	next int
}

func newRecentIDs(n int) *recentIDs {
	if n <= 0 {
		n = 10_000
	}
	return &recentIDs{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// Has reports whether id was processed recently.
func (r *recentIDs) Has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[id]
	return ok
}

// Add remembers id, forgetting the oldest id when full.
func (r *recentIDs) Add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}
