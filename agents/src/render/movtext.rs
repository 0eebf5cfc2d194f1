//! The MP4 timed-text (3GPP TS 26.245, "tx3g", FFmpeg's `mov_text`) formats we write
//! ourselves: the sample description that goes into the stream's extradata and one sample
//! per cue. Building them directly avoids feeding ASS events through FFmpeg's subtitle
//! encoder for what is plain text.

/// The TextSampleEntry fields after the generic sample-entry header, laid out as FFmpeg's
/// `mov_text` encoder writes them for unstyled text: bottom-centred, transparent
/// background, one white 16 px style and a one-entry font table naming "Arial". Font and
/// size are FFmpeg's ASS defaults, so FFmpeg-based tools convert the track back to plain
/// text (other values come back as `<font>` tags in SRT).
pub(crate) fn sample_description() -> Vec<u8> {
    let mut d = Vec::with_capacity(48);
    d.extend_from_slice(&0u32.to_be_bytes()); // displayFlags
    d.push(0x01); // horizontal-justification: centre
    d.push(0xff); // vertical-justification: bottom (-1)
    d.extend_from_slice(&[0, 0, 0, 0]); // background-color-rgba: transparent
    d.extend_from_slice(&[0; 8]); // BoxRecord: top, left, bottom, right (0 = whole track)
    // StyleRecord: startChar, endChar, font-ID, face-style-flags, font-size, text-color-rgba
    d.extend_from_slice(&0u16.to_be_bytes());
    d.extend_from_slice(&0u16.to_be_bytes());
    d.extend_from_slice(&1u16.to_be_bytes());
    d.push(0);
    d.push(16);
    d.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    // FontTableBox ('ftab'): one entry, font-ID 1.
    let name = b"Arial";
    let ftab_len = 4 + 4 + 2 + 2 + 1 + name.len();
    d.extend_from_slice(&(ftab_len as u32).to_be_bytes());
    d.extend_from_slice(b"ftab");
    d.extend_from_slice(&1u16.to_be_bytes());
    d.extend_from_slice(&1u16.to_be_bytes());
    d.push(name.len() as u8);
    d.extend_from_slice(name);
    d
}

/// One text sample: the UTF-8 text prefixed by its byte length (big-endian u16). Text longer
/// than 65535 bytes is cut at a character boundary.
pub(crate) fn sample(text: &str) -> Vec<u8> {
    let mut end = text.len().min(u16::MAX as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let body = &text.as_bytes()[..end];
    let mut s = Vec::with_capacity(2 + body.len());
    s.extend_from_slice(&(body.len() as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_length_prefixed_utf8() {
        assert_eq!(sample("Hé"), vec![0, 3, b'H', 0xc3, 0xa9]);
        assert_eq!(sample(""), vec![0, 0]);
        let long = "é".repeat(40_000);
        let s = sample(&long);
        let n = u16::from_be_bytes([s[0], s[1]]) as usize;
        assert_eq!(n, s.len() - 2);
        assert!(std::str::from_utf8(&s[2..]).is_ok());
    }

    #[test]
    fn sample_description_has_the_tx3g_layout() {
        let d = sample_description();
        assert_eq!(d.len(), 30 + 18);
        assert_eq!(&d[34..38], b"ftab");
        assert_eq!(u32::from_be_bytes([d[30], d[31], d[32], d[33]]) as usize, d.len() - 30);
    }
}
