package event

import "time"

// Header is one Kafka message header.
type Header struct {
	Key   string
	Value []byte
}

// Message is the part of a Kafka message the decoder reads.
type Message struct {
	Topic   string
	Value   []byte
	Headers []Header
}

// Reason is a short, stable code for why a message was rejected. It is used
// as a metric label, so the set is small and fixed; the detail is in
// DecodeError.Detail.
type Reason string

// Rejection reasons.
const (
	ReasonOversized       Reason = "oversized"        // payload larger than the configured limit
	ReasonNotUTF8         Reason = "not_utf8"         // payload or header is not valid UTF-8
	ReasonInvalidJSON     Reason = "invalid_json"     // not parseable JSON, or not an object
	ReasonWrongType       Reason = "wrong_type"       // a field has the wrong JSON type or time format
	ReasonMissingField    Reason = "missing_field"    // a required field is absent or empty
	ReasonInvalidValue    Reason = "invalid_value"    // a field has a value outside its vocabulary
	ReasonUnknownKind     Reason = "unknown_kind"     // native kind or CloudEvents type not recognised
	ReasonUnsupported     Reason = "unsupported"      // a spec version we do not accept
	ReasonMissingID       Reason = "missing_id"       // event without an id (native event_id, ce id/source)
	ReasonMissingSubject  Reason = "missing_subject"  // CDEvent without subject
	ReasonFutureTimestamp Reason = "future_timestamp" // a timestamp too far ahead of now
	ReasonTimeOrder       Reason = "time_order"       // timestamps in an impossible order
	ReasonUnusedType      Reason = "unused_type"      // a CDEvents type opsmetrics does not store, with RejectUnused
	// ReasonIDConflict is given by the ingester, not by Decode: the event
	// id is already stored, or claimed, with different content.
	ReasonIDConflict Reason = "id_conflict"
)

// DecodeError is the error Decode returns for a message that cannot be
// accepted. The ingester sends the message to the dead-letter topic with
// Error() as its reason.
type DecodeError struct {
	Reason Reason
	Detail string // a sentence a user can act on, naming the field and value
}

func (e *DecodeError) Error() string { return string(e.Reason) + ": " + e.Detail }

// Decoder turns Kafka messages into events. The zero value is usable and
// applies the defaults documented on each field.
type Decoder struct {
	// MaxBytes is the largest accepted payload. Zero means 1 MiB.
	MaxBytes int
	// MaxFutureSkew is how far ahead of Now a timestamp may be. Zero means 1h.
	MaxFutureSkew time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// EnvironmentAliases maps environment names (lower-case) onto the
	// environment they stand for (prod → production). Every environment
	// name is lower-cased first, so PRODUCTION is production.
	EnvironmentAliases map[string]string
	// RejectUnused makes Decode reject a valid CDEvent of a type opsmetrics
	// does not store with ReasonUnusedType, instead of returning *Skipped.
	RejectUnused bool
}
