// Package rewrite holds every change the proxy makes to upstream responses:
// broker endpoints replaced through an AddrMap, and ApiVersions clamped so a
// client never negotiates a version whose response could carry an endpoint
// the proxy does not rewrite.
//
// The functions here are pure: they never dial or listen, and they decode
// only the responses they must change.
package rewrite
