//! The protocol: every Call and Reply message encoded on one side decodes on the other.

use std::cell::RefCell;
use std::rc::Rc;

use prost::Message;
use v8box::proto::{self, call::Op, reply::Result as R, *};
use v8box::Worker;

fn calls() -> Vec<Call> {
    let ops = vec![
        Op::ReadFile(ReadFile {
            path: "/data/ü.txt".into(),
        }),
        Op::WriteFile(WriteFile {
            path: "out.bin".into(),
            data: vec![0, 1, 255],
            append: true,
        }),
        // Lengths that need two- and three-byte varints: the encoder writes a field in place
        // and moves its body up when the length outgrows one byte.
        Op::WriteFile(WriteFile {
            path: "ü/".repeat(100),
            data: (0..70_000u32).map(|i| i as u8).collect(),
            append: false,
        }),
        Op::Fetch(Fetch {
            url: format!("https://example.com/{}", "ß".repeat(60)),
            method: "GET".into(),
            headers: (0..20)
                .map(|i| Header {
                    name: format!("x-header-{i}"),
                    value: "v".repeat(i * 3),
                })
                .collect(),
            body: vec![],
        }),
        Op::ReadDir(ReadDir { path: ".".into() }),
        Op::Stat(Stat { path: "a".into() }),
        Op::Remove(Remove {
            path: "b".into(),
            recursive: true,
        }),
        Op::Mkdir(Mkdir {
            path: "c/d".into(),
            recursive: true,
        }),
        Op::Rename(Rename {
            from: "e".into(),
            to: "f".into(),
        }),
        Op::EnvGet(EnvGet {
            name: "HOME".into(),
        }),
        Op::Now(Now {}),
        Op::RandomBytes(RandomBytes {
            length: 4_000_000_000,
        }),
        Op::Sleep(Sleep {
            ms: 12.5,
            unref: false,
        }),
        Op::Cancel(Cancel {
            call_id: (1 << 53) - 1,
        }),
        Op::Args(Args {}),
        Op::Fetch(Fetch {
            url: "https://example.com/x?y=1".into(),
            method: "POST".into(),
            headers: vec![
                Header {
                    name: "a".into(),
                    value: "1".into(),
                },
                Header {
                    name: "b".into(),
                    value: "😀".into(),
                },
            ],
            body: b"body".to_vec(),
        }),
        Op::HostSend(HostSend {
            channel: "events".into(),
            data: vec![9; 300],
            reply_to: 77,
        }),
        Op::HostListen(HostListen {
            channel: "events".into(),
        }),
        Op::Log(Log {
            level: log::Level::Warn as i32,
            message: "careful".into(),
        }),
        Op::Exit(Exit { code: -7 }),
    ];
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| Call {
            id: i as u64 + 1,
            op: Some(op),
        })
        .collect()
}

fn replies() -> Vec<Reply> {
    let results = vec![
        R::Error(proto::Error {
            code: ErrorCode::PermissionDenied as i32,
            message: "no".into(),
        }),
        R::Ok(Empty {}),
        R::Bytes(Bytes {
            data: (0..=255).collect(),
        }),
        R::DirEntries(DirEntries {
            entries: vec![
                DirEntry {
                    name: "x".into(),
                    is_file: true,
                    is_dir: false,
                    is_symlink: false,
                },
                DirEntry {
                    name: "y".into(),
                    is_file: false,
                    is_dir: true,
                    is_symlink: true,
                },
            ],
        }),
        R::FileInfo(FileInfo {
            is_file: true,
            is_dir: false,
            is_symlink: true,
            size: 1 << 40,
            mtime_ms: 1.7e12,
            mode: 0o100644,
        }),
        R::EnvValue(EnvValue {
            present: true,
            value: "v".into(),
        }),
        R::Time(Time {
            unix_ms: 1_763_700_000_123.456,
            monotonic_ms: 12.5,
        }),
        R::FetchResponse(FetchResponse {
            status: 404,
            headers: vec![Header {
                name: "content-type".into(),
                value: "text/plain".into(),
            }],
            body: b"missing".to_vec(),
            url: "http://h/".into(),
            status_text: "Not Found".into(),
        }),
        R::HostMessage(HostMessage {
            channel: "c".into(),
            data: vec![1, 2],
            request_id: 1 << 40,
        }),
        R::Batch(Batch {
            replies: vec![
                Reply {
                    id: 5,
                    result: Some(R::Ok(Empty {})),
                },
                Reply {
                    id: 6,
                    result: Some(R::Bytes(Bytes {
                        data: vec![1, 2, 3],
                    })),
                },
            ],
        }),
        R::Strings(Strings {
            values: vec!["a".into(), "".into(), "ß".into()],
        }),
        R::TimersFired(TimersFired {
            call_ids: vec![1, 300, (1 << 53) - 1],
        }),
    ];
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| Reply {
            id: i as u64,
            result: Some(r),
        })
        .collect()
}

/// A worker with only the codec loaded, and what it has passed to `$send` so far.
fn recording_codec_worker() -> (Worker, Rc<RefCell<Vec<Vec<u8>>>>) {
    let out = Rc::new(RefCell::new(Vec::new()));
    let sink = out.clone();
    let mut w = Worker::new(move |b| {
        sink.borrow_mut().push(b.to_vec());
        None
    });
    w.load("codec.js", v8box::runtime::CODEC_JS).unwrap();
    (w, out)
}

/// A worker with only the codec; `$recv` gets "type\0bytes", `$send` returns the re-encoding.
fn codec_worker() -> (Worker, Rc<RefCell<Vec<Vec<u8>>>>) {
    let (mut w, out) = recording_codec_worker();
    w.load(
        "roundtrip.js",
        "$recv(buf => {\n\
           const all = new Uint8Array(buf);\n\
           const cut = all.indexOf(0);\n\
           const type = codec.utf8Decode(all, 0, cut);\n\
           const msg = codec.decode(type, all.subarray(cut + 1));\n\
           $send(codec.encode(type, msg));\n\
         });",
    )
    .unwrap();
    (w, out)
}

fn through_js(
    w: &mut Worker,
    out: &Rc<RefCell<Vec<Vec<u8>>>>,
    type_name: &str,
    bytes: Vec<u8>,
) -> Vec<u8> {
    let mut msg = type_name.as_bytes().to_vec();
    msg.push(0);
    msg.extend(bytes);
    w.send_bytes(&msg).unwrap();
    out.borrow_mut().pop().expect("the script answered")
}

#[test]
fn every_message_encoded_in_rust_decodes_in_js_and_back() {
    let (mut w, out) = codec_worker();
    for call in calls() {
        let back = through_js(&mut w, &out, "v8box.v1.Call", call.encode_to_vec());
        assert_eq!(Call::decode(&back[..]).unwrap(), call);
        // Canonical encodings agree byte for byte.
        assert_eq!(back, call.encode_to_vec());
    }
    for reply in replies() {
        let back = through_js(&mut w, &out, "v8box.v1.Reply", reply.encode_to_vec());
        assert_eq!(Reply::decode(&back[..]).unwrap(), reply);
    }
}

/// `decodeMember`, which the `sys` library uses for every answer, keeps the same member as
/// `decode`, and refuses what `decode` refuses.
#[test]
fn the_member_decoder_agrees_with_the_full_decoder() {
    let (mut w, out) = recording_codec_worker();
    w.load(
        "member.js",
        "$recv(buf => {\n\
           const bytes = new Uint8Array(buf);\n\
           const R = 'v8box.v1.Reply';\n\
           let full, member;\n\
           try { full = codec.decode(R, bytes); } catch (e) { full = e.message; }\n\
           try { member = codec.decodeMember(R, bytes); } catch (e) { member = e.message; }\n\
           if (typeof full === 'string' || typeof member === 'string') {\n\
             $send(codec.utf8Encode(`${full} | ${member}`));\n\
           } else if (member.name !== full.result) {\n\
             $send(codec.utf8Encode(`member ${member.name}, decode ${full.result}`));\n\
           } else {\n\
             $send(codec.encode(R, member.name === undefined ? {} : { [member.name]: member.value }));\n\
           }\n\
         });",
    )
    .unwrap();
    let mut answer = |bytes: &[u8]| {
        w.send_bytes(bytes).unwrap();
        out.borrow_mut().pop().expect("the script answered")
    };
    let mut all = replies();
    all.push(Reply {
        id: 9,
        result: None,
    });
    for reply in all {
        let back = answer(&reply.encode_to_vec());
        let expected = Reply {
            id: 0,
            result: reply.result.clone(),
        };
        assert_eq!(
            Reply::decode(&back[..]).ok(),
            Some(expected),
            "{reply:?}: {}",
            String::from_utf8_lossy(&back)
        );
    }
    // Malformed: both refuse, with the same message.
    let good = Reply {
        id: 3,
        result: Some(R::EnvValue(EnvValue {
            present: true,
            value: "/root".into(),
        })),
    }
    .encode_to_vec();
    for bad in [
        &good[..good.len() - 1],
        &[0x12, 0x05, 0x08][..],
        &[0x0a, 0x01][..],
    ] {
        let text = String::from_utf8(answer(bad)).unwrap();
        let (full, member) = text.split_once(" | ").expect(&text);
        assert!(full.starts_with("malformed protobuf message"), "{text}");
        assert_eq!(full, member);
    }
}

/// The codec's writer keeps its buffer (and a view per message length) between messages; a
/// message that outgrows it must not leave later ones reading the old buffer.
#[test]
fn short_messages_after_a_long_one_encode_whole() {
    let (mut w, out) = recording_codec_worker();
    w.load(
        "grow.js",
        "const C = 'v8box.v1.Call';\n\
         $send(codec.encode(C, { id: 1, envGet: { name: 'HOME' } }));\n\
         $send(codec.encode(C, { id: 2, writeFile: { path: 'o', data: new Uint8Array(1000).fill(7) } }));\n\
         $send(codec.encode(C, { id: 1, envGet: { name: 'HOME' } }));\n\
         $send(codec.encode(C, { id: 3, envGet: { name: 'PATH' } }));",
    )
    .unwrap();
    let got = out.borrow();
    let env_get = |id, name: &str| Call {
        id,
        op: Some(Op::EnvGet(EnvGet { name: name.into() })),
    };
    assert_eq!(Call::decode(&got[0][..]).unwrap(), env_get(1, "HOME"));
    assert_eq!(
        Call::decode(&got[1][..]).unwrap(),
        Call {
            id: 2,
            op: Some(Op::WriteFile(WriteFile {
                path: "o".into(),
                data: vec![7; 1000],
                append: false
            }))
        }
    );
    assert_eq!(got[2], got[0]);
    assert_eq!(Call::decode(&got[3][..]).unwrap(), env_get(3, "PATH"));
}

#[test]
fn messages_built_in_js_decode_in_rust() {
    let (mut w, out) = recording_codec_worker();
    w.load(
        "build.js",
        "const C = 'v8box.v1.Call';\n\
         $send(codec.encode(C, { id: 1, readFile: { path: '/data/ü.txt' } }));\n\
         $send(codec.encode(C, { id: 2, writeFile: { path: 'o', data: new Uint8Array([0, 1, 255]), append: true } }));\n\
         $send(codec.encode(C, { id: 3, fetch: { url: 'http://h/', method: 'PUT', headers: [{ name: 'k', value: 'v' }], body: 'hi' } }));\n\
         $send(codec.encode(C, { id: 4, log: { level: 'LEVEL_ERROR', message: 'x' } }));\n\
         $send(codec.encode(C, { id: 5, exit: { code: -7 } }));\n\
         $send(codec.encode(C, { id: 2 ** 53 - 1, sleep: { ms: 0.25 } }));\n\
         $send(codec.encode('v8box.v1.Reply', { id: 9, error: { code: 'QUOTA_EXCEEDED', message: 'm' } }));",
    )
    .unwrap();
    let got = out.borrow();
    let call = |i: usize| Call::decode(&got[i][..]).unwrap();
    assert_eq!(
        call(0),
        Call {
            id: 1,
            op: Some(Op::ReadFile(ReadFile {
                path: "/data/ü.txt".into()
            }))
        }
    );
    assert_eq!(
        call(1),
        Call {
            id: 2,
            op: Some(Op::WriteFile(WriteFile {
                path: "o".into(),
                data: vec![0, 1, 255],
                append: true
            }))
        }
    );
    assert_eq!(
        call(2),
        Call {
            id: 3,
            op: Some(Op::Fetch(Fetch {
                url: "http://h/".into(),
                method: "PUT".into(),
                headers: vec![Header {
                    name: "k".into(),
                    value: "v".into()
                }],
                body: b"hi".to_vec()
            }))
        }
    );
    assert_eq!(
        call(3).op,
        Some(Op::Log(Log {
            level: log::Level::Error as i32,
            message: "x".into()
        }))
    );
    assert_eq!(call(4).op, Some(Op::Exit(Exit { code: -7 })));
    assert_eq!(
        call(5),
        Call {
            id: (1 << 53) - 1,
            op: Some(Op::Sleep(Sleep {
                ms: 0.25,
                unref: false
            }))
        }
    );
    assert_eq!(
        Reply::decode(&got[6][..]).unwrap(),
        proto::error_reply(9, ErrorCode::QuotaExceeded, "m")
    );
}

#[test]
fn utf8_survives_the_codec() {
    let (mut w, out) = codec_worker();
    let text = "a\u{0}é€😀\u{10FFFF}";
    let call = Call {
        id: 1,
        op: Some(Op::ReadFile(ReadFile { path: text.into() })),
    };
    let back = through_js(&mut w, &out, "v8box.v1.Call", call.encode_to_vec());
    assert_eq!(Call::decode(&back[..]).unwrap(), call);
}

#[test]
fn a_batch_built_from_encoded_replies_decodes_as_those_replies() {
    let parts = vec![
        Reply {
            id: 1,
            result: Some(R::Ok(Empty {})),
        },
        proto::error_reply(2, ErrorCode::NotFound, "gone"),
        Reply {
            id: 3,
            result: Some(R::Bytes(Bytes { data: vec![9; 200] })),
        },
    ];
    let encoded: Vec<Vec<u8>> = parts.iter().map(|r| r.encode_to_vec()).collect();
    let batch = Reply::decode(&proto::batch_of(&encoded)[..]).unwrap();
    assert_eq!(
        batch,
        Reply {
            id: 0,
            result: Some(R::Batch(Batch { replies: parts }))
        }
    );
}
