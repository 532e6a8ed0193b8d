//! `multipart/form-data` bodies from `--multipart-field name=value` and
//! `--multipart-file name=/path[;type=mime]`.

use std::path::PathBuf;

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Field { name: String, value: String },
    File { name: String, path: PathBuf, content_type: String },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MultipartError {
    #[error("`{0}` must be name=value")]
    Malformed(String),
    #[error("cannot read multipart file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("a multipart name may not contain quotes or line breaks")]
    BadName,
}

/// Parses `name=value`.
pub fn field(raw: &str) -> Result<Part, MultipartError> {
    let (name, value) = raw.split_once('=').ok_or_else(|| MultipartError::Malformed(raw.to_string()))?;
    Ok(Part::Field { name: name.to_string(), value: value.to_string() })
}

/// Parses `name=/path[;type=mime]`.
pub fn file(raw: &str) -> Result<Part, MultipartError> {
    let (name, rest) = raw.split_once('=').ok_or_else(|| MultipartError::Malformed(raw.to_string()))?;
    let (path, content_type) = match rest.rsplit_once(";type=") {
        Some((path, mime)) => (path, mime.to_string()),
        None => (rest, "application/octet-stream".to_string()),
    };
    Ok(Part::File { name: name.to_string(), path: PathBuf::from(path), content_type })
}

/// The encoded body and its `content-type` header value.
pub fn encode(parts: &[Part], boundary: &str) -> Result<(Vec<u8>, String), MultipartError> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Field { name, value } => {
                check_name(name)?;
                body.extend_from_slice(
                    format!("content-disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(value.as_bytes());
            }
            Part::File { name, path, content_type } => {
                check_name(name)?;
                let filename = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                check_name(&filename)?;
                let data = std::fs::read(path)
                    .map_err(|source| MultipartError::Read { path: path.clone(), source })?;
                body.extend_from_slice(
                    format!(
                        "content-disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\ncontent-type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(&data);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((body, format!("multipart/form-data; boundary={boundary}")))
}

fn check_name(name: &str) -> Result<(), MultipartError> {
    if name.contains(['"', '\r', '\n']) { Err(MultipartError::BadName) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fields and files encode to a well-formed form body.
    #[test]
    fn encodes_fields_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let audio = dir.path().join("a.mp3");
        std::fs::write(&audio, b"ID3data").unwrap();
        let parts = vec![
            field("model=whisper-1").unwrap(),
            file(&format!("file={};type=audio/mpeg", audio.display())).unwrap(),
        ];
        let (body, content_type) = encode(&parts, "XYZ").unwrap();
        assert_eq!(content_type, "multipart/form-data; boundary=XYZ");
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            "--XYZ\r\ncontent-disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n\
             --XYZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\ncontent-type: audio/mpeg\r\n\r\nID3data\r\n\
             --XYZ--\r\n"
        );
    }
}
