package realtime

import (
	"encoding/json"

	"github.com/openai/openai-go/v3/packages/param"
	oai "github.com/openai/openai-go/v3/realtime"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
)

// appendAudio appends an input_audio_buffer.append event carrying the
// base64 audio as it is. It is the audio hot path: no encoding/json.
func appendAudio(b, audio []byte) []byte {
	b = append(b, `{"type":"input_audio_buffer.append","audio":`...)
	b = jsonscan.AppendString(b, audio)
	return append(b, '}')
}

// sessionUpdate is the session.update that configures a call: mu-law in
// and out, audio responses only, the adapter's voice, turn detection and
// transcription, and the call's instructions.
func sessionUpdate(instructions string, o Options) oai.SessionUpdateEventParam {
	pcmu := oai.RealtimeAudioFormatsUnionParam{OfAudioPCMU: &oai.RealtimeAudioFormatsAudioPCMUParam{Type: "audio/pcmu"}}
	in := oai.RealtimeAudioConfigInputParam{Format: pcmu}
	if o.TurnDetection == TurnSemanticVAD {
		in.TurnDetection.OfSemanticVad = &oai.RealtimeAudioInputTurnDetectionSemanticVadParam{}
	} else {
		in.TurnDetection.OfServerVad = &oai.RealtimeAudioInputTurnDetectionServerVadParam{}
	}
	if o.TranscriptionModel != "" {
		in.Transcription.Model = oai.AudioTranscriptionModel(o.TranscriptionModel)
	}
	out := oai.RealtimeAudioConfigOutputParam{Format: pcmu}
	if o.Voice != "" {
		out.Voice.OfString = param.NewOpt(o.Voice)
	}
	session := &oai.RealtimeSessionCreateRequestParam{
		OutputModalities: []string{"audio"},
		Audio:            oai.RealtimeAudioConfigParam{Input: in, Output: out},
	}
	if instructions != "" {
		session.Instructions = param.NewOpt(instructions)
	}
	return oai.SessionUpdateEventParam{Session: oai.SessionUpdateEventSessionUnionParam{OfRealtime: session}}
}

// responseCreate is a response.create, with instructions for this response
// only when not empty.
func responseCreate(instructions string) oai.ResponseCreateEventParam {
	var e oai.ResponseCreateEventParam
	if instructions != "" {
		e.Response.Instructions = param.NewOpt(instructions)
	}
	return e
}

// truncate is a conversation.item.truncate of an assistant item's audio.
func truncate(itemID string, audioEndMs int) oai.ConversationItemTruncateEventParam {
	return oai.ConversationItemTruncateEventParam{ItemID: itemID, ContentIndex: 0, AudioEndMs: int64(audioEndMs)}
}

// appendJSON appends the JSON encoding of a client event.
func appendJSON(b []byte, v json.Marshaler) ([]byte, error) {
	j, err := v.MarshalJSON()
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}
