package event

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Validate checks that e is complete and consistent: required fields,
// vocabularies, no timestamp after notAfter, and timestamps in a possible
// order. Decode calls it; producers can call it before sending.
func Validate(e *Event, notAfter time.Time) *DecodeError {
	if e.ID == "" {
		return reject(ReasonMissingID, "%s event has no id", ident(string(e.Kind)))
	}
	// The entity's name is only needed in a rejection: entity builds it.
	entity := func() string { return entityName(e) }
	missing := func(entity, field string) *DecodeError {
		return reject(ReasonMissingField, "%s: required field %s is missing or empty", entity, field)
	}
	invalid := func(field, value string, want string) *DecodeError {
		return reject(ReasonInvalidValue, "%s: %s %q is not one of %s", entity(), field, truncate(value), want)
	}
	var (
		stamps [6]stamp // the kind's timestamps, then the event's time
		n      int
		order  [][2]int // pairs of indexes into stamps: [earlier, later]
	)
	switch e.Kind {
	case KindDeployment:
		d := e.Deployment
		switch {
		case d.ID == "":
			return missing("deployment event "+ident(e.ID), "deployment_id")
		case d.Service == "":
			return missing(entity(), "service")
		case d.Environment == "":
			return missing(entity(), "environment")
		case d.Status == "":
			return missing(entity(), "status")
		case d.FinishedAt.IsZero():
			return missing(entity(), "finished_at")
		}
		switch d.Status {
		case DeploymentSuccess, DeploymentFailure, DeploymentRolledBack:
		default:
			return invalid("status", string(d.Status), "success, failure, rolled_back")
		}
		stamps[0], stamps[1], n = stamp{"started_at", d.StartedAt}, stamp{"finished_at", d.FinishedAt}, 2
		order = firstBeforeSecond
	case KindIncident:
		i := e.Incident
		if i.ID == "" {
			return missing("incident event "+ident(e.ID), "incident_id")
		}
		stamps[0], stamps[1], stamps[2] = stamp{"impact_started_at", i.ImpactStartedAt}, stamp{"detected_at", i.DetectedAt},
			stamp{"acknowledged_at", i.AcknowledgedAt}
		stamps[3], stamps[4], n = stamp{"mitigated_at", i.MitigatedAt}, stamp{"resolved_at", i.ResolvedAt}, 5
		order = incidentOrder
		any := false
		for _, s := range stamps[:n] {
			any = any || !s.t.IsZero()
		}
		if !any {
			return reject(ReasonMissingField, "%s: a lifecycle message needs at least one of impact_started_at, detected_at, acknowledged_at, mitigated_at, resolved_at", entity())
		}
		if i.Severity != "" && !validSeverity(i.Severity) {
			return invalid("severity", string(i.Severity), "critical, high, medium, low")
		}
		switch i.DetectionSource {
		case "", DetectedByMonitoring, DetectedByCustomer:
		default:
			return invalid("detection_source", string(i.DetectionSource), "monitoring, customer")
		}
	case KindPatch:
		p := e.Patch
		switch {
		case p.ID == "":
			return missing("patch event "+ident(e.ID), "patch_id")
		case p.Target == "":
			return missing("patch "+ident(p.ID), "target")
		case p.ReleasedAt.IsZero() && p.AppliedAt.IsZero():
			return missing(entity(), "released_at or applied_at")
		}
		if p.Severity != "" && !validSeverity(p.Severity) {
			return invalid("severity", string(p.Severity), "critical, high, medium, low")
		}
		switch p.Outcome {
		case "", PatchApplied, PatchFailed, PatchRolledBack:
		default:
			return invalid("outcome", string(p.Outcome), "applied, failed, rolled_back")
		}
		switch p.TargetType {
		case "", TargetHost, TargetImage, TargetService:
		default:
			return invalid("target_type", string(p.TargetType), "host, image, service")
		}
		stamps[0], stamps[1], n = stamp{"released_at", p.ReleasedAt}, stamp{"applied_at", p.AppliedAt}, 2
		order = firstBeforeSecond
	case KindChange:
		c := e.Change
		switch {
		case c.ID == "":
			return missing("change event "+ident(e.ID), "change_id")
		case c.Service == "":
			return missing(entity(), "service")
		case c.AuthoredAt.IsZero() && c.MergedAt.IsZero():
			return missing(entity(), "authored_at or merged_at")
		}
		// A commit authored after its merge (clock skew, an amended or
		// rebased commit) is stored as it is: lead time starts at the merge.
		stamps[0], stamps[1], n = stamp{"authored_at", c.AuthoredAt}, stamp{"merged_at", c.MergedAt}, 2
	default:
		return reject(ReasonUnknownKind, "kind %q is not one of deployment, incident, patch, change", e.Kind)
	}
	if err := checkIdentifiers(e, entity); err != nil {
		return err
	}
	stamps[n] = stamp{"time", e.Time}
	for _, s := range stamps[:n+1] {
		if !s.t.IsZero() && s.t.After(notAfter) {
			return reject(ReasonFutureTimestamp, "%s: %s %s is in the future (later than %s)", entity(), s.name,
				s.t.UTC().Format(time.RFC3339), notAfter.UTC().Format(time.RFC3339))
		}
		if !s.t.IsZero() && s.t.Before(minTime) {
			return reject(ReasonInvalidValue, "%s: %s %s is before 1970", entity(), s.name, s.t.UTC().Format(time.RFC3339))
		}
	}
	for _, o := range order {
		a, b := stamps[o[0]], stamps[o[1]]
		if !a.t.IsZero() && !b.t.IsZero() && b.t.Before(a.t) {
			return reject(ReasonTimeOrder, "%s: %s %s is before %s %s", entity(), b.name, b.t.UTC().Format(time.RFC3339),
				a.name, a.t.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// stamp is a named timestamp of an event.
type stamp struct {
	name string
	t    time.Time
}

// The order of timestamps within one message, as pairs of indexes into
// Validate's stamps: [earlier, later].
var (
	firstBeforeSecond = [][2]int{{0, 1}}
	incidentOrder     = [][2]int{{0, 1}, {0, 2}, {0, 3}, {0, 4}, {1, 2}, {1, 3}, {1, 4}, {2, 4}, {3, 4}}
)

// entityName names the entity of a complete event in a rejection.
func entityName(e *Event) string {
	switch e.Kind {
	case KindDeployment:
		return "deployment " + ident(e.Deployment.ID)
	case KindIncident:
		return "incident " + ident(e.Incident.ID)
	case KindPatch:
		return fmt.Sprintf("patch %s on %s", ident(e.Patch.ID), ident(e.Patch.Target))
	case KindChange:
		return "change " + ident(e.Change.ID)
	}
	return ""
}

var minTime = time.Unix(1, 0)

func validSeverity(s Severity) bool {
	switch s {
	case SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow:
		return true
	}
	return false
}

// MaxIdentifierBytes is the longest identifier Validate accepts: a
// service, team or environment (which become metric labels and dashboard
// variables) or an entity id.
const MaxIdentifierBytes = 256

// identifiers calls check with each identifier field of e, by its native
// name, until check returns false.
func identifiers(e *Event, check func(name, value string) bool) {
	switch e.Kind {
	case KindDeployment:
		d := e.Deployment
		_ = check("deployment_id", d.ID) && check("service", d.Service) && check("team", d.Team) &&
			check("environment", d.Environment) && check("fixes_incident", d.FixesIncident) && check("actor", d.Actor) &&
			check("pipeline", d.Pipeline) && all(d.Changes, "changes", check)
	case KindIncident:
		i := e.Incident
		_ = check("incident_id", i.ID) && check("service", i.Service) && check("team", i.Team) && check("environment", i.Environment) &&
			check("cause_deployment_id", i.CauseDeployment) && check("cause_commit", i.CauseCommit)
	case KindPatch:
		p := e.Patch
		_ = check("patch_id", p.ID) && check("target", p.Target) && check("service", p.Service) && check("team", p.Team) &&
			check("environment", p.Environment)
	case KindChange:
		c := e.Change
		_ = check("change_id", c.ID) && check("service", c.Service) && check("team", c.Team)
	}
}

func all(values []string, name string, check func(name, value string) bool) bool {
	for _, v := range values {
		if !check(name, v) {
			return false
		}
	}
	return true
}

// checkIdentifiers applies the identifier rule: at most MaxIdentifierBytes,
// and no control character (C0, DEL, C1) nor line separator nor
// bidirectional formatting character (U+061C, U+200E, U+200F,
// U+202A–U+202E, U+2066–U+2069), which would make one name look like
// another, or break a log line, a label or a CSV row.
func checkIdentifiers(e *Event, entity func() string) *DecodeError {
	var err *DecodeError
	identifiers(e, func(name, value string) bool {
		if !validIdentifier(value) {
			err = reject(ReasonInvalidValue, "%s: %s %v", entity(), name, CheckIdentifier(value))
		}
		return err == nil
	})
	return err
}

// validIdentifier reports whether CheckIdentifier accepts v, without
// building its error.
func validIdentifier(v string) bool {
	if len(v) > MaxIdentifierBytes {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		} else if c >= utf8.RuneSelf {
			return CheckIdentifier(v) == nil
		}
	}
	return true
}

// CheckIdentifier applies the identifier rule to one name; the error says
// what breaks it ("is 300 bytes, more than the limit of 256").
func CheckIdentifier(v string) error {
	if len(v) > MaxIdentifierBytes {
		return fmt.Errorf("is %d bytes, more than the limit of %d", len(v), MaxIdentifierBytes)
	}
	for i, r := range v {
		if forbiddenRune(r) {
			return fmt.Errorf("has the character %U at byte %d; identifiers may not hold control or bidirectional formatting characters", r, i)
		}
	}
	return nil
}

func forbiddenRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x2028 && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// ident is an identifier as a reason shows it: cut to 64 bytes, and
// quoted if it holds anything but plain printable characters.
func ident(s string) string {
	if t := truncate(s); t != s {
		return quoted(t) + "…"
	}
	return quoted(s)
}

// truncate cuts s to at most 64 bytes, at a character boundary.
func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
