package credstore

// DescribeUserScramCredentials (50) v0 and AlterUserScramCredentials (51) v0,
// answered by the proxy with the KRaft broker's rules (ScramControlManager,
// ScramImage.describe; spec §4). Users written here live in a UserStore and
// take effect for new logins at once; users from credentials.file or
// credentials.secrets_dir are read-only to the API.

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/scram-proxy/scram-proxy/internal/sasl"
)

// UserStore persists users written through the admin API. Implementations
// must be durable on return and safe for concurrent use.
type UserStore interface {
	LoadUsers() (map[string]map[sasl.Mechanism]sasl.Credential, error)
	// PutUser replaces every credential of user; an empty map deletes it.
	PutUser(user string, creds map[sasl.Mechanism]sasl.Credential) error
}

// Admin answers the SCRAM admin APIs over a Store. Callers must be super
// users. It is safe for concurrent use; writes are serialized.
type Admin struct {
	store      *Store
	persist    UserStore
	superUsers map[string]bool
	mu         sync.Mutex // serializes writes to the API layer
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
		for m, c := range creds {
			snap.Put(m, u, c)
		}
	}
	store.ReplaceSource(SourceAPI, snap)
	return a, nil
}

// Ranges lists the API keys and versions Admin answers: key, min, max.
func (*Admin) Ranges() [][3]int16 { return [][3]int16{{50, 0, 0}, {51, 0, 0}} }

// Handle answers one request from an authenticated principal ("User:x").
func (a *Admin) Handle(_ context.Context, principal string, _ bool, req kmsg.Request) (kmsg.Response, error) {
	allowed := a.superUsers[principal]
	switch r := req.(type) {
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		return a.describe(allowed, r), nil
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		return a.alter(allowed, r)
	}
	return nil, fmt.Errorf("credstore: no handler for %s", kmsg.NameForKey(req.Key()))
}

func strptr(s string) *string { return &s }

func (a *Admin) describe(allowed bool, r *kmsg.DescribeUserSCRAMCredentialsRequest) kmsg.Response {
	resp := kmsg.NewPtrDescribeUserSCRAMCredentialsResponse()
	if !allowed {
		// DESCRIBE on CLUSTER denied: 31 at the top and for each user named,
		// whose user field Kafka leaves empty.
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = strptr(kerr.ClusterAuthorizationFailed.Description)
		for range r.Users {
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			res.ErrorMessage = strptr(kerr.ClusterAuthorizationFailed.Description)
			resp.Results = append(resp.Results, res)
		}
		return resp
	}
	names := make([]string, 0, len(r.Users))
	for _, u := range r.Users {
		names = append(names, u.Name)
	}
	if len(names) == 0 { // null or empty: every user with a credential
		names = a.store.AllUsers()
	}
	count := map[string]int{}
	for _, n := range names {
		count[n]++
	}
	done := map[string]bool{}
	for _, n := range names {
		if done[n] {
			continue
		}
		done[n] = true
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = n
		creds := a.store.Credentials(n)
		switch {
		case count[n] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = strptr("Cannot describe SCRAM credentials for the same user twice in a single request: " + n)
		case len(creds) == 0:
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = strptr("Attempt to describe a user credential that does not exist: " + n)
		default:
			for _, m := range sasl.Mechanisms() {
				if c, ok := creds[m]; ok {
					ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
					ci.Mechanism, ci.Iterations = m.TypeByte(), int32(c.Iterations)
					res.CredentialInfos = append(res.CredentialInfos, ci)
				}
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return resp
}

// change is one validated (user, mechanism) edit.
type change struct {
	user string
	mech sasl.Mechanism
	cred *sasl.Credential // nil: delete
}

func (a *Admin) alter(allowed bool, r *kmsg.AlterUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrAlterUserSCRAMCredentialsResponse()
	var order []string
	count := map[string]int{}
	for _, d := range r.Deletions {
		if count[d.Name] == 0 {
			order = append(order, d.Name)
		}
		count[d.Name]++
	}
	for _, u := range r.Upsertions {
		if count[u.Name] == 0 {
			order = append(order, u.Name)
		}
		count[u.Name]++
	}
	result := func(user string, code int16, msg string) {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode = user, code
		if msg != "" {
			res.ErrorMessage = strptr(msg)
		}
		resp.Results = append(resp.Results, res)
	}
	if !allowed {
		sorted := append([]string(nil), order...)
		sort.Strings(sorted)
		for _, u := range sorted {
			result(u, kerr.ClusterAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Description)
		}
		return resp, nil
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	errs := map[string][2]any{} // user → {code, message}
	var changes []change
	fail := func(user string, code int16, msg string) {
		if _, ok := errs[user]; !ok {
			errs[user] = [2]any{code, msg}
		}
	}
	validate := func(user string, mechByte int8) (sasl.Mechanism, bool) {
		switch {
		case count[user] > 1:
			fail(user, kerr.DuplicateResource.Code, "A user credential cannot be altered twice in the same request")
		case user == "":
			fail(user, kerr.UnacceptableCredential.Code, "Username must not be empty")
		default:
			if src, ok := a.store.Owner(user); ok && src != SourceAPI {
				fail(user, kerr.UnacceptableCredential.Code, "User "+user+" is defined in "+src.String()+" and is read-only to the admin API")
				return "", false
			}
			m, ok := sasl.MechanismForType(mechByte)
			if !ok {
				fail(user, kerr.UnsupportedSaslMechanism.Code, "Unknown SCRAM mechanism")
			}
			return m, ok
		}
		return "", false
	}
	api := a.store.Snapshot(SourceAPI)
	for _, d := range r.Deletions {
		m, ok := validate(d.Name, d.Mechanism)
		if !ok {
			continue
		}
		if _, exists := api.Get(d.Name)[m]; !exists {
			fail(d.Name, kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist")
			continue
		}
		changes = append(changes, change{user: d.Name, mech: m})
	}
	for _, u := range r.Upsertions {
		m, ok := validate(u.Name, u.Mechanism)
		if !ok {
			continue
		}
		switch {
		case u.Iterations < sasl.MinIterations:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Too few iterations")
			continue
		case u.Iterations > sasl.MaxIterations:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Too many iterations")
			continue
		}
		c, err := sasl.CredentialFromSaltedPassword(m, u.Salt, u.SaltedPassword, int(u.Iterations))
		if err != nil {
			fail(u.Name, kerr.UnknownServerError.Code, err.Error())
			continue
		}
		// What the store would refuse to load must not be stored: Kafka
		// accepts an empty salt here, but a record the proxy cannot load
		// back is worse than a refusal.
		if err := c.Validate(m); err != nil {
			fail(u.Name, kerr.UnacceptableCredential.Code, err.Error())
			continue
		}
		changes = append(changes, change{user: u.Name, mech: m, cred: &c})
	}

	next := api.Clone()
	for _, ch := range changes {
		creds := next.Get(ch.user)
		if creds == nil {
			creds = map[sasl.Mechanism]sasl.Credential{}
		}
		if ch.cred == nil {
			delete(creds, ch.mech)
			next.Delete(ch.mech, ch.user)
		} else {
			creds[ch.mech] = *ch.cred
			next.Put(ch.mech, ch.user, *ch.cred)
		}
		if err := a.persist.PutUser(ch.user, creds); err != nil {
			return nil, fmt.Errorf("persist SCRAM user: %w", err)
		}
	}
	a.store.ReplaceSource(SourceAPI, next)
	for _, u := range order {
		if e, ok := errs[u]; ok {
			result(u, e[0].(int16), e[1].(string))
		} else {
			result(u, 0, "")
		}
	}
	return resp, nil
}
