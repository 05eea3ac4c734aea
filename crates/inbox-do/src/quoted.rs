//! The new text of a message (interim: replaced by the quote-removal rules
//! on merge).

/// The new text of a message.
pub fn extracted_text(text: Option<&str>, html: Option<&str>) -> Option<String> {
    let _ = html;
    text.map(|t| t.trim_end().replace("\r\n", "\n"))
}

/// The first 200 characters of the extracted text, whitespace collapsed.
pub fn preview(extracted: Option<&str>) -> Option<String> {
    let collapsed = extracted?.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = collapsed.chars().take(200).collect();
    (!cut.is_empty()).then_some(cut)
}
