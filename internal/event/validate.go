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
	type stamp struct {
		name string
		t    time.Time
	}
	var (
		entity string
		stamps []stamp
		order  [][2]int // pairs of indexes into stamps: [earlier, later]
	)
	missing := func(field string) *DecodeError {
		return reject(ReasonMissingField, "%s: required field %s is missing or empty", entity, field)
	}
	invalid := func(field, value string, want string) *DecodeError {
		return reject(ReasonInvalidValue, "%s: %s %q is not one of %s", entity, field, truncate(value), want)
	}
	switch e.Kind {
	case KindDeployment:
		d := e.Deployment
		entity = "deployment " + ident(d.ID)
		switch {
		case d.ID == "":
			entity = "deployment event " + ident(e.ID)
			return missing("deployment_id")
		case d.Service == "":
			return missing("service")
		case d.Environment == "":
			return missing("environment")
		case d.Status == "":
			return missing("status")
		case d.FinishedAt.IsZero():
			return missing("finished_at")
		}
		switch d.Status {
		case DeploymentSuccess, DeploymentFailure, DeploymentRolledBack:
		default:
			return invalid("status", string(d.Status), "success, failure, rolled_back")
		}
		stamps = []stamp{{"started_at", d.StartedAt}, {"finished_at", d.FinishedAt}}
		order = [][2]int{{0, 1}}
	case KindIncident:
		i := e.Incident
		entity = "incident " + ident(i.ID)
		if i.ID == "" {
			entity = "incident event " + ident(e.ID)
			return missing("incident_id")
		}
		stamps = []stamp{{"impact_started_at", i.ImpactStartedAt}, {"detected_at", i.DetectedAt},
			{"acknowledged_at", i.AcknowledgedAt}, {"mitigated_at", i.MitigatedAt}, {"resolved_at", i.ResolvedAt}}
		order = [][2]int{{0, 1}, {0, 2}, {0, 3}, {0, 4}, {1, 2}, {1, 3}, {1, 4}, {2, 4}, {3, 4}}
		any := false
		for _, s := range stamps {
			any = any || !s.t.IsZero()
		}
		if !any {
			return reject(ReasonMissingField, "%s: a lifecycle message needs at least one of impact_started_at, detected_at, acknowledged_at, mitigated_at, resolved_at", entity)
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
		entity = fmt.Sprintf("patch %s on %s", ident(p.ID), ident(p.Target))
		switch {
		case p.ID == "":
			entity = "patch event " + ident(e.ID)
			return missing("patch_id")
		case p.Target == "":
			entity = "patch " + ident(p.ID)
			return missing("target")
		case p.ReleasedAt.IsZero() && p.AppliedAt.IsZero():
			return missing("released_at or applied_at")
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
		stamps = []stamp{{"released_at", p.ReleasedAt}, {"applied_at", p.AppliedAt}}
		order = [][2]int{{0, 1}}
	case KindChange:
		c := e.Change
		entity = "change " + ident(c.ID)
		switch {
		case c.ID == "":
			entity = "change event " + ident(e.ID)
			return missing("change_id")
		case c.Service == "":
			return missing("service")
		case c.AuthoredAt.IsZero() && c.MergedAt.IsZero():
			return missing("authored_at or merged_at")
		}
		// A commit authored after its merge (clock skew, an amended or
		// rebased commit) is stored as it is: lead time starts at the merge.
		stamps = []stamp{{"authored_at", c.AuthoredAt}, {"merged_at", c.MergedAt}}
	default:
		return reject(ReasonUnknownKind, "kind %q is not one of deployment, incident, patch, change", e.Kind)
	}
	if err := checkIdentifiers(e, entity); err != nil {
		return err
	}
	for _, s := range append(stamps, stamp{"time", e.Time}) {
		if !s.t.IsZero() && s.t.After(notAfter) {
			return reject(ReasonFutureTimestamp, "%s: %s %s is in the future (later than %s)", entity, s.name,
				s.t.UTC().Format(time.RFC3339), notAfter.UTC().Format(time.RFC3339))
		}
		if !s.t.IsZero() && s.t.Before(minTime) {
			return reject(ReasonInvalidValue, "%s: %s %s is before 1970", entity, s.name, s.t.UTC().Format(time.RFC3339))
		}
	}
	for _, o := range order {
		a, b := stamps[o[0]], stamps[o[1]]
		if !a.t.IsZero() && !b.t.IsZero() && b.t.Before(a.t) {
			return reject(ReasonTimeOrder, "%s: %s %s is before %s %s", entity, b.name, b.t.UTC().Format(time.RFC3339),
				a.name, a.t.UTC().Format(time.RFC3339))
		}
	}
	return nil
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

// identifiers returns the identifier fields of e by their native names.
func identifiers(e *Event) [][2]string {
	switch e.Kind {
	case KindDeployment:
		d := e.Deployment
		ids := [][2]string{{"deployment_id", d.ID}, {"service", d.Service}, {"team", d.Team}, {"environment", d.Environment},
			{"fixes_incident", d.FixesIncident}}
		for _, c := range d.Changes {
			ids = append(ids, [2]string{"changes", c})
		}
		return ids
	case KindIncident:
		i := e.Incident
		return [][2]string{{"incident_id", i.ID}, {"service", i.Service}, {"team", i.Team}, {"environment", i.Environment},
			{"cause_deployment_id", i.CauseDeployment}, {"cause_commit", i.CauseCommit}}
	case KindPatch:
		p := e.Patch
		return [][2]string{{"patch_id", p.ID}, {"target", p.Target}, {"service", p.Service}, {"team", p.Team}, {"environment", p.Environment}}
	case KindChange:
		c := e.Change
		return [][2]string{{"change_id", c.ID}, {"service", c.Service}, {"team", c.Team}}
	}
	return nil
}

// checkIdentifiers applies the identifier rule: at most MaxIdentifierBytes,
// and no control character (C0, DEL, C1) nor line separator nor
// bidirectional formatting character (U+061C, U+200E, U+200F,
// U+202A–U+202E, U+2066–U+2069), which would make one name look like
// another, or break a log line, a label or a CSV row.
func checkIdentifiers(e *Event, entity string) *DecodeError {
	for _, f := range identifiers(e) {
		if err := CheckIdentifier(f[1]); err != nil {
			return reject(ReasonInvalidValue, "%s: %s %v", entity, f[0], err)
		}
	}
	return nil
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
