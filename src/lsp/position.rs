//! Byte offsets (guardflow's spans) to LSP positions and back. LSP counts
//! columns in UTF-16 code units; a position past the end of its line is
//! the end of the line, and one past the last line is the end of the text.

use lsp_types::{Position, Range};

use crate::source::Span;

/// Where the lines of one text start.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// The position of byte `offset` (clamped to the text and to a
    /// character boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(self.len).min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let character = text[start..offset].encode_utf16().count();
        Position::new(line as u32, character as u32)
    }

    /// The byte offset of `pos`.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return text.len();
        };
        let line = &text[start..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        let mut units = 0u32;
        for (i, c) in line.char_indices() {
            if units >= pos.character {
                return start + i;
            }
            units += c.len_utf16() as u32;
        }
        start + line.len()
    }

    pub fn range(&self, text: &str, span: Span) -> Range {
        Range::new(
            self.position(text, span.start as usize),
            self.position(text, span.end as usize),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_utf16_code_units() {
        // é is 2 bytes and 1 unit; 😀 is 4 bytes and 2 units
        let text = "ab\né😀x\n";
        let idx = LineIndex::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(idx.position(text, x), Position::new(1, 3));
        assert_eq!(idx.offset(text, Position::new(1, 3)), x);
        assert_eq!(idx.position(text, 0), Position::new(0, 0));
        assert_eq!(idx.position(text, 3), Position::new(1, 0));
    }

    #[test]
    fn offsets_inside_a_character_and_past_the_end_are_clamped() {
        let text = "é😀\nz";
        let idx = LineIndex::new(text);
        // byte 1 is inside é: the position of é
        assert_eq!(idx.position(text, 1), Position::new(0, 0));
        // unit 2 is inside 😀 (units 1..3): the offset after it
        assert_eq!(idx.offset(text, Position::new(0, 2)), "é😀".len());
        // past the end of a line: the end of that line
        assert_eq!(idx.offset(text, Position::new(0, 99)), "é😀".len());
        // past the last line: the end of the text
        assert_eq!(idx.offset(text, Position::new(9, 0)), text.len());
        assert_eq!(idx.position(text, 999), Position::new(1, 1));
    }
}
