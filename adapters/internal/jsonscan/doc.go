// Package jsonscan reads and writes the few JSON shapes on the audio hot
// paths (Twilio media frames, OpenAI audio deltas and appends) without
// allocating.
//
// The reader walks JSON that encoding/json's Valid has already accepted, so
// it only finds the ends of values and never reports syntax errors;
// json.Unmarshal costs several allocations per frame even into
// json.RawMessage fields. Everything else goes through encoding/json.
package jsonscan
