package credstore

// What DescribeUserScramCredentials and AlterUserScramCredentials do, with
// the KRaft broker's rules (ScramControlManager, ScramImage.describe); the
// Kafka wire side is internal/localapi. Users written here live in a
// UserStore and take effect for new logins at once; users from
// credentials.file or credentials.secrets_dir are read-only to the API.

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// The refusals of the SCRAM admin operations. Each is one Kafka error
// (named in brackets); internal/localapi answers them with Kafka's messages.
var (
	// ErrNotSuperUser: only super users may describe or alter
	// [CLUSTER_AUTHORIZATION_FAILED].
	ErrNotSuperUser = errors.New("credstore: the SCRAM admin operations are for super users")
	// ErrDuplicateUser: the request names the user more than once
	// [DUPLICATE_RESOURCE].
	ErrDuplicateUser = errors.New("credstore: user named more than once in one request")
	// ErrNoCredential: nothing to describe or delete [RESOURCE_NOT_FOUND].
	ErrNoCredential = errors.New("credstore: no such credential")
	// ErrEmptyUser [UNACCEPTABLE_CREDENTIAL].
	ErrEmptyUser = errors.New("credstore: empty user name")
	// ErrUnknownMechanism: not a SCRAM mechanism type [UNSUPPORTED_SASL_MECHANISM].
	ErrUnknownMechanism = errors.New("credstore: unknown SCRAM mechanism")
	// ErrTooFewIterations and ErrTooManyIterations: outside
	// sasl.MinIterations..sasl.MaxIterations [UNACCEPTABLE_CREDENTIAL].
	ErrTooFewIterations  = errors.New("credstore: too few iterations")
	ErrTooManyIterations = errors.New("credstore: too many iterations")
)

// ReadOnlyError refuses a change to a user that a read-only source (the
// credentials file or secrets directory) defines [UNACCEPTABLE_CREDENTIAL].
type ReadOnlyError struct {
	User   string
	Source Source
}

func (e *ReadOnlyError) Error() string {
	return "credstore: user " + e.User + " is defined in " + e.Source.String() + ", read-only to the admin API"
}

// InvalidCredentialError refuses a credential the store could not load
// back (sasl.Credential.Validate) [UNACCEPTABLE_CREDENTIAL].
type InvalidCredentialError struct{ Err error }

func (e *InvalidCredentialError) Error() string { return e.Err.Error() }
func (e *InvalidCredentialError) Unwrap() error { return e.Err }

// UserStore persists users written through the admin API. Implementations
// must be durable on return and safe for concurrent use.
type UserStore interface {
	// LoadUsers returns every user's credentials by mechanism. The
	// caller reads them only: an implementation may share the maps and
	// credentials with its own memory.
	LoadUsers() (map[string]map[sasl.Mechanism]sasl.Credential, error)
	// PutUser replaces every credential of user; an empty map deletes it.
	PutUser(user string, creds map[sasl.Mechanism]sasl.Credential) error
}

// SelfApplying is implemented by a UserStore that feeds every write it
// accepts back into the Admin (ApplyUser) before PutUser returns, as a
// store shared through a log does when it reads its own record back. The
// Admin asks AppliesWrites before each write (a log applies only once it
// tails into the Admin); when it reports true the Admin does not apply the
// write itself: applying it again after the store returned could put an
// older record back over a newer one the store had applied from another
// proxy in between.
type SelfApplying interface {
	AppliesWrites() bool
}

// Admin describes and alters the admin API's users in a Store. Callers must
// be super users. It is safe for concurrent use.
//
// writeMu serializes Alter across its checks, its store calls and its
// updates of the API layer. ApplyUser never takes it (only the Store's
// publishing lock, which is never held across a call to the UserStore): a
// store shared by several proxies calls ApplyUser from its own goroutine,
// also while Alter waits in PutUser for the store to read its write back.
type Admin struct {
	store      *Store
	persist    UserStore
	superUsers map[string]bool
	writeMu    sync.Mutex
}

// NewAdmin loads the persisted API users into store's API layer.
func NewAdmin(store *Store, persist UserStore, superUsers []string) (*Admin, error) {
	a := &Admin{store: store, persist: persist, superUsers: map[string]bool{}}
	for _, p := range superUsers {
		a.superUsers[p] = true
	}
	users, err := persist.LoadUsers()
	if err != nil {
		return nil, fmt.Errorf("load SCRAM users: %w", err)
	}
	snap := NewSnapshot()
	for u, creds := range users {
		snap.putAll(u, creds)
	}
	store.ReplaceSource(SourceAPI, snap)
	return a, nil
}

// ApplyUser sets user's credentials in the API layer to creds, replacing
// all it had; empty or nil creds remove the user. It is how the layer
// follows its store: Alter calls it after each write the store accepted,
// and a store shared by several proxies calls it for every user record it
// reads, its own writes included. Applying the same record again changes
// nothing. It takes only the Store's publishing lock, never Alter's, and
// costs a copy of one shard of the layer (Store.ReplaceUser).
func (a *Admin) ApplyUser(user string, creds map[sasl.Mechanism]sasl.Credential) {
	a.store.ReplaceUser(SourceAPI, user, creds)
}

// CredentialInfo is one credential as a describe shows it.
type CredentialInfo struct {
	Mechanism  sasl.Mechanism
	Iterations int
}

// DescribedUser is one user of a Describe answer: its credentials, or Err
// (ErrDuplicateUser, ErrNoCredential).
type DescribedUser struct {
	User        string
	Credentials []CredentialInfo // in sasl.Mechanisms() order
	Err         error
}

// Describe lists users' credentials for principal ("User:x"), or returns
// ErrNotSuperUser. No users means every user with a credential. There is
// one answer per distinct name, in request order (ScramImage.describe).
func (a *Admin) Describe(principal string, users []string) ([]DescribedUser, error) {
	if !a.superUsers[principal] {
		return nil, ErrNotSuperUser
	}
	if len(users) == 0 {
		users = a.store.AllUsers()
	}
	count := map[string]int{}
	for _, n := range users {
		count[n]++
	}
	var out []DescribedUser
	done := map[string]bool{}
	for _, n := range users {
		if done[n] {
			continue
		}
		done[n] = true
		d := DescribedUser{User: n}
		creds := a.store.Credentials(n)
		switch {
		case count[n] > 1:
			d.Err = ErrDuplicateUser
		case len(creds) == 0:
			d.Err = ErrNoCredential
		default:
			for _, m := range sasl.Mechanisms() {
				if c, ok := creds[m]; ok {
					d.Credentials = append(d.Credentials, CredentialInfo{Mechanism: m, Iterations: c.Iterations})
				}
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// Deletion removes one of a user's credentials. Mechanism is Kafka's
// ScramMechanism type (sasl.MechanismForType).
type Deletion struct {
	User      string
	Mechanism int8
}

// Upsertion sets one of a user's credentials from its salted password.
// Mechanism is Kafka's ScramMechanism type.
type Upsertion struct {
	User           string
	Mechanism      int8
	Iterations     int32
	Salt           []byte
	SaltedPassword []byte // secret

	_ struct{}
}

// String leaves out the salted password.
func (u Upsertion) String() string {
	return fmt.Sprintf("upsert %q mechanism %d iterations %d", u.User, u.Mechanism, u.Iterations)
}

// UserResult is one user's outcome of Alter: Err is nil when every change
// to the user was applied.
type UserResult struct {
	User string
	Err  error
}

// change is one validated (user, mechanism) edit.
type change struct {
	user string
	mech sasl.Mechanism
	cred *sasl.Credential // nil: delete
}

// Alter applies deletions and upsertions for principal, one result per
// distinct user in order of first mention; a user named twice gets
// ErrDuplicateUser and no change. A caller that is not a super user gets
// ErrNotSuperUser for every user, sorted by name (ControllerApis). The error
// is a storage failure.
func (a *Admin) Alter(principal string, deletions []Deletion, upsertions []Upsertion) ([]UserResult, error) {
	var order []string
	count := map[string]int{}
	for _, d := range deletions {
		if count[d.User] == 0 {
			order = append(order, d.User)
		}
		count[d.User]++
	}
	for _, u := range upsertions {
		if count[u.User] == 0 {
			order = append(order, u.User)
		}
		count[u.User]++
	}
	var results []UserResult
	if !a.superUsers[principal] {
		sorted := append([]string(nil), order...)
		sort.Strings(sorted)
		for _, u := range sorted {
			results = append(results, UserResult{User: u, Err: ErrNotSuperUser})
		}
		return results, nil
	}

	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	errs := map[string]error{}
	var changes []change
	fail := func(user string, err error) {
		if _, ok := errs[user]; !ok {
			errs[user] = err
		}
	}
	validate := func(user string, mechType int8) (sasl.Mechanism, bool) {
		switch {
		case count[user] > 1:
			fail(user, ErrDuplicateUser)
		case user == "":
			fail(user, ErrEmptyUser)
		default:
			if src, ok := a.store.Owner(user); ok && src != SourceAPI {
				fail(user, &ReadOnlyError{User: user, Source: src})
				return "", false
			}
			m, ok := sasl.MechanismForType(mechType)
			if !ok {
				fail(user, ErrUnknownMechanism)
			}
			return m, ok
		}
		return "", false
	}
	api := a.store.Snapshot(SourceAPI)
	for _, d := range deletions {
		m, ok := validate(d.User, d.Mechanism)
		if !ok {
			continue
		}
		if _, exists := api.Get(d.User)[m]; !exists {
			fail(d.User, ErrNoCredential)
			continue
		}
		changes = append(changes, change{user: d.User, mech: m})
	}
	for _, u := range upsertions {
		m, ok := validate(u.User, u.Mechanism)
		if !ok {
			continue
		}
		switch {
		case u.Iterations < sasl.MinIterations:
			fail(u.User, ErrTooFewIterations)
			continue
		case u.Iterations > sasl.MaxIterations:
			fail(u.User, ErrTooManyIterations)
			continue
		}
		c, err := sasl.CredentialFromSaltedPassword(m, u.Salt, u.SaltedPassword, int(u.Iterations))
		if err != nil {
			fail(u.User, err)
			continue
		}
		// What the store would refuse to load must not be stored: Kafka
		// accepts an empty salt here, but a record the proxy cannot load
		// back is worse than a refusal.
		if err := c.Validate(m); err != nil {
			fail(u.User, &InvalidCredentialError{Err: err})
			continue
		}
		changes = append(changes, change{user: u.User, mech: m, cred: &c})
	}

	// One write per user, in request order; each applied to the layer
	// once the store accepted it, so a storage failure part-way leaves the
	// layer showing exactly what was stored.
	next := map[string]map[sasl.Mechanism]sasl.Credential{}
	var users []string
	for _, ch := range changes {
		creds, ok := next[ch.user]
		if !ok {
			creds = copyCreds(api.Get(ch.user))
			next[ch.user] = creds
			users = append(users, ch.user)
		}
		if ch.cred == nil {
			delete(creds, ch.mech)
		} else {
			creds[ch.mech] = *ch.cred
		}
	}
	for _, u := range users {
		s, ok := a.persist.(SelfApplying)
		self := ok && s.AppliesWrites()
		if err := a.persist.PutUser(u, next[u]); err != nil {
			return nil, fmt.Errorf("persist SCRAM user: %w", err)
		}
		if !self {
			a.ApplyUser(u, next[u])
		}
	}
	for _, u := range order {
		results = append(results, UserResult{User: u, Err: errs[u]})
	}
	return results, nil
}
