//! Persistence engines (`--pe`): data read from a packet's payload that joins the persistence
//! template key. The only engine is `sip` (`ip_vs_pe_sip`): the SIP `Call-ID` of a UDP datagram,
//! so that the calls of many clients behind one address can go to different real servers while
//! every message of one call reaches the same one.
//!
//! The Call-ID is found the way the kernel's SIP helper finds headers (`ct_sip_get_header` with
//! `callid_len`), including its quirks, so that the same datagrams are recognised:
//! * The search starts `offset` bytes into the payload, where `offset` is the payload's own
//!   offset in the IP packet (`ip_vs_sip_fill_param` passes the payload and its offset), and a
//!   header counts only at the start of a line (after CR, LF or CRLF), never on continuation
//!   lines.
//! * Names compare case-insensitively: `Call-Id` as a prefix of the line, or the compact `i`
//!   followed by a non-letter. Spaces (not tabs) and continuation lines may surround the colon.
//! * The value is a "word" (`iswordc` characters), optionally `@` and another word; an empty
//!   value makes the search go on further down. The value must be at most
//!   [`PE_DATA_MAXLEN`] bytes and followed by CR or LF.

use crate::wire::ipvs_sync::PE_DATA_MAXLEN;

/// The SIP persistence engine's name.
pub const SIP: &str = "sip";

/// The transport payload of a packet, for persistence engines that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    /// The bytes after the transport header (after the 8-byte UDP header).
    pub data: &'a [u8],
    /// Offset of `data` from the start of the IP header (IP header, extension headers and the
    /// transport header): the kernel starts its Call-ID search this far into the payload.
    pub offset: usize,
}

impl<'a> Payload<'a> {
    /// A payload that starts `offset` bytes into its IP packet.
    pub fn new(data: &'a [u8], offset: usize) -> Payload<'a> {
        Payload { data, offset }
    }
}

/// The Call-ID of a SIP message (`ip_vs_sip_fill_param` / `get_callid`), or `None` when there is
/// none the kernel would accept. Never panics, for any input.
///
/// ```
/// use lvs_core::pe::{sip_call_id, Payload};
/// let msg = b"INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: a84b4c76e66710@pc33\r\n\r\n";
/// assert_eq!(sip_call_id(Payload::new(msg, 28)), Some(&b"a84b4c76e66710@pc33"[..]));
/// ```
pub fn sip_call_id(p: Payload<'_>) -> Option<&[u8]> {
    let data = p.data;
    let mut from = p.offset;
    loop {
        match find_header(data, from) {
            Found::Value(start, len) => {
                if len > PE_DATA_MAXLEN {
                    return None;
                }
                // SIP headers always end with a line terminator.
                return match data.get(start + len) {
                    Some(b'\r' | b'\n') => Some(&data[start..start + len]),
                    _ => None,
                };
            }
            // An empty value: look again from the value's offset added to the current start
            // (the kernel adds its `matchoff` to `dataoff`), which always moves forward.
            Found::Empty(at) => from = from.checked_add(at.max(1))?,
            Found::None => return None,
        }
    }
}

enum Found {
    /// The value's offset and length.
    Value(usize, usize),
    /// A Call-ID header with an empty value; the offset where the value would start.
    Empty(usize),
    None,
}

const LONG: &[u8] = b"call-id";
const COMPACT: u8 = b'i';

/// `ct_sip_get_header(…, SIP_HDR_CALL_ID, …)` on `data`, starting at `from`.
fn find_header(data: &[u8], from: usize) -> Found {
    let limit = data.len();
    let mut i = from;
    while i < limit {
        // Find the beginning of a line.
        if !matches!(data[i], b'\r' | b'\n') {
            i += 1;
            continue;
        }
        i += 1;
        if i >= limit {
            break;
        }
        if data[i - 1] == b'\r' && data[i] == b'\n' {
            i += 1;
            if i >= limit {
                break;
            }
        }
        // Skip continuation lines.
        if matches!(data[i], b' ' | b'\t') {
            continue;
        }
        let rest = &data[i..];
        if rest.len() >= LONG.len() && rest[..LONG.len()].eq_ignore_ascii_case(LONG) {
            i += LONG.len();
        } else if rest.len() > 1 && rest[0].eq_ignore_ascii_case(&COMPACT) && !rest[1].is_ascii_alphabetic() {
            i += 1;
        } else {
            continue;
        }
        // The colon, with whitespace around it.
        let Some(c) = skip_whitespace(data, i) else { break };
        if c >= limit || data[c] != b':' || c + 1 >= limit {
            break;
        }
        let Some(v) = skip_whitespace(data, c + 1) else { break };
        let len = callid_len(&data[v.min(limit)..]);
        return if len == 0 { Found::Empty(v) } else { Found::Value(v, len) };
    }
    Found::None
}

/// `sip_skip_whitespace`: spaces and continuation lines. As in the kernel, the character right
/// after a continuation line's indentation is skipped too (the loop steps past it).
fn skip_whitespace(data: &[u8], mut i: usize) -> Option<usize> {
    while i < data.len() {
        match data[i] {
            b' ' => {}
            b'\r' | b'\n' => i = follow_continuation(data, i)?,
            _ => break,
        }
        i += 1;
    }
    Some(i)
}

/// `sip_follow_continuation`: past the line end at `i`, the indentation of a continuation line;
/// `None` if the next line is not one.
fn follow_continuation(data: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    if i >= data.len() {
        return None;
    }
    if data[i - 1] == b'\r' && data[i] == b'\n' {
        i += 1;
        if i >= data.len() {
            return None;
        }
    }
    if !matches!(data[i], b' ' | b'\t') {
        return None;
    }
    while i < data.len() && matches!(data[i], b' ' | b'\t') {
        i += 1;
    }
    Some(i)
}

/// `iswordc`: the characters of a SIP "word".
fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, b'!' | b'"' | b'%' | b'(' ..= b'/' | b':' | b'<' | b'>' | b'?' | b'[' ..= b']')
        || matches!(c, b'_' | b'`' | b'{' | b'}' | b'~')
}

fn word_len(s: &[u8]) -> usize {
    s.iter().take_while(|&&c| is_word(c)).count()
}

/// `callid_len`: word [ "@" word ]; 0 if the part after `@` is empty.
fn callid_len(s: &[u8]) -> usize {
    let len = word_len(s);
    if len == 0 || s.get(len) != Some(&b'@') {
        return len;
    }
    match word_len(&s[len + 1..]) {
        0 => 0,
        d => len + 1 + d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload as an IPv4 datagram without options carries it (offset 20 + 8).
    fn id(msg: &[u8]) -> Option<&[u8]> {
        sip_call_id(Payload::new(msg, 28))
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: Bob <sip:bob@biloxi.example.com>\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
        CSeq: 314159 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn long_and_compact_forms_any_case() {
        assert_eq!(id(INVITE.as_bytes()), Some(&b"a84b4c76e66710@pc33.atlanta.example.com"[..]));
        let compact = INVITE.replace("Call-ID:", "i:");
        assert_eq!(id(compact.as_bytes()), Some(&b"a84b4c76e66710@pc33.atlanta.example.com"[..]));
        let lower = INVITE.replace("Call-ID: ", "call-id   :   ");
        assert_eq!(id(lower.as_bytes()), Some(&b"a84b4c76e66710@pc33.atlanta.example.com"[..]));
        let upper = INVITE.replace("Call-ID:", "I :");
        assert!(id(upper.as_bytes()).is_some());
        // LF-only line ends (RFC 2543) work too.
        let lf = INVITE.replace("\r\n", "\n");
        assert_eq!(id(lf.as_bytes()), Some(&b"a84b4c76e66710@pc33.atlanta.example.com"[..]));
    }

    #[test]
    fn values_stop_at_non_word_characters() {
        let m = |v: &str| format!("OPTIONS sip:carol@chicago.example.com SIP/2.0\r\nCall-ID: {v}\r\n\r\n");
        assert_eq!(id(m("abc;x").as_bytes()), None, "not followed by a line end");
        assert_eq!(id(m("f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com").as_bytes()).unwrap().len(), 48);
        assert_eq!(id(m("abc@").as_bytes()), None, "empty host part");
        assert_eq!(id(m("a@b@c").as_bytes()), None, "a second @ is not a line end");
    }

    #[test]
    fn headers_that_are_not_the_call_id() {
        // "In-Reply-To" starts with i followed by a letter; "Call-Info" is not "Call-Id".
        let m = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nIn-Reply-To: 70710@saturn\r\n\
                 Call-Info: <http://wwww.example.com/alice/photo.jpg>\r\n\r\n";
        assert_eq!(id(m.as_bytes()), None);
        // No Call-ID, no payload, a header on the first line only (before the search offset).
        assert_eq!(id(b""), None);
        assert_eq!(id(b"\r\n\r\n"), None);
        assert_eq!(sip_call_id(Payload::new(b"x\r\nCall-ID: early\r\n", 28)), None);
        assert_eq!(sip_call_id(Payload::new(b"x\r\nCall-ID: early\r\n", 0)), Some(&b"early"[..]));
        // A name matched as a prefix but not followed by a colon ends the search (kernel break).
        let m = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nCall-IDx: 1\r\nCall-ID: 2\r\n\r\n";
        assert_eq!(id(m.as_bytes()), None);
    }

    #[test]
    fn empty_values_continue_and_length_is_limited() {
        // The search resumes at the old start plus the empty value's offset (52 + 28 = 80 here):
        // a header right below is skipped, one further down is found.
        let m = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nCall-ID: ;\r\ni: near\r\n\
                 Subject: a line long enough to reach past the resumed offset\r\ni: second\r\n\r\n";
        assert_eq!(id(m.as_bytes()), Some(&b"second"[..]));
        let long = format!("INVITE sip:bob@biloxi.example.com SIP/2.0\r\nCall-ID: {}\r\n", "a".repeat(255));
        assert_eq!(id(long.as_bytes()).map(<[u8]>::len), Some(255));
        let long = format!("INVITE sip:bob@biloxi.example.com SIP/2.0\r\nCall-ID: {}\r\n", "a".repeat(256));
        assert_eq!(id(long.as_bytes()), None);
        // Folded onto a continuation line: the kernel's skip eats the first character.
        let folded = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nCall-ID:\r\n   xabc\r\n\r\n";
        assert_eq!(id(folded.as_bytes()), Some(&b"abc"[..]));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = crate::rng::Rng::new(11);
        let alphabet = b"Call-ID:i @\r\n \tabc;";
        for n in 0..20_000u32 {
            let len = rng.below(80) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    if n % 2 == 0 {
                        alphabet[rng.below(alphabet.len() as u32) as usize]
                    } else {
                        rng.below(256) as u8
                    }
                })
                .collect();
            if let Some(v) = sip_call_id(Payload::new(&buf, rng.below(8) as usize)) {
                assert!(!v.is_empty() && v.len() <= PE_DATA_MAXLEN);
            }
        }
        assert_eq!(sip_call_id(Payload::new(INVITE.as_bytes(), usize::MAX)), None);
    }
}
