//! Sealing: signed checkpoints over the hash chain, with a key that evolves after each one
//! (forward security). The design and what it guarantees are in docs/AUDIT.md, "Sealed logs".
//!
//! - `keygen` makes a master key pair. The master *public* key is the verification key (the
//!   `.pub` file); the master *secret* key only certifies the key of epoch 0 and is never
//!   written anywhere.
//! - The secret file holds the current epoch `i`, that epoch's signing key `k_i` and its
//!   certificate: `k_{i-1}`'s signature (the master's for epoch 0) over `i` and `k_i`'s public
//!   key.
//! - A checkpoint record carries the epoch, its public key and certificate, and `k_i`'s
//!   signature over the record's own text (which holds `prev`, the hash of the record before
//!   it, so the signature covers the whole chain up to it). After a checkpoint is on disk, a
//!   fresh random `k_{i+1}` is made, certified by `k_i`, and the secret file is replaced with
//!   it (written, flushed, renamed over the old one, the old one's bytes overwritten): `k_i`
//!   exists nowhere any more.
//! - A verifier starts from the master public key and walks the checkpoints in order: each
//!   one's epoch is the next, its certificate checks with the key it trusts so far, and its
//!   signature with the key the certificate vouches for, which it trusts from then on.
//!
//! All cryptography is `ed25519-dalek`'s; keys come from the operating system (`getrandom`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

/// A checkpoint is written after this many records (and at every run's end, and when the log
/// is closed with records not yet sealed). See docs/AUDIT.md for the choice.
pub const SEAL_EVERY: u64 = 1000;

/// The `kind` of a checkpoint record.
pub const CHECKPOINT: &str = "checkpoint";

/// What a checkpoint's signature signs before the record's text.
const CHECKPOINT_DOMAIN: &[u8] = b"v8box-seal-checkpoint-v1\n";
/// What a certificate signs before the epoch and the key it vouches for.
const CERT_DOMAIN: &[u8] = b"v8box-seal-epoch-key-v1\n";

/// The field a checkpoint's signature is in, the last before `hash`: `,"sig":"` + 128 hex
/// digits + `"`.
pub(super) const SIG_FIELD: &str = ",\"sig\":\"";
/// `,"sig":"…"}`: the field and the record's closing brace.
pub(super) const SIG_SUFFIX_LEN: usize = SIG_FIELD.len() + 128 + 2;

const PUBLIC_FORMAT: &str = "v8box-seal-public-v1";
const SECRET_FORMAT: &str = "v8box-seal-secret-v1";

/// The file names `keygen` writes in its folder.
pub const SECRET_FILE: &str = "audit.key";
/// See `SECRET_FILE`.
pub const PUBLIC_FILE: &str = "audit.pub";

/// What a certificate signs: the epoch and the public key of that epoch.
fn cert_message(epoch: u64, key: &VerifyingKey) -> Vec<u8> {
    let mut m = CERT_DOMAIN.to_vec();
    m.extend_from_slice(epoch.to_string().as_bytes());
    m.push(b'\n');
    m.extend_from_slice(hex::encode(key.as_bytes()).as_bytes());
    m
}

/// What a checkpoint's signature signs: the record's text without `sig` and `hash`.
pub(super) fn checkpoint_message(body: &[u8]) -> Vec<u8> {
    let mut m = CHECKPOINT_DOMAIN.to_vec();
    m.extend_from_slice(body);
    m
}

fn random_key() -> io::Result<SigningKey> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut seed[..]).map_err(|e| io::Error::other(format!("getrandom: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    )
}

fn hex_array<const N: usize>(v: &Value, key: &str) -> Result<[u8; N], String> {
    let text = v
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no \"{key}\""))?;
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| format!("\"{key}\" is not {} hex digits", 2 * N))?;
    Ok(out)
}

/// A verification key: the master public key `keygen` wrote (`audit.pub`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a `.pub` file written by `keygen`.
    pub fn load(path: &Path) -> io::Result<PublicKey> {
        let text = std::fs::read_to_string(path)?;
        Self::parse(&text).map_err(|why| invalid(path, why))
    }

    /// Parses the text of a `.pub` file.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|_| "not a v8box public key (made by `v8box audit keygen`)".to_string())?;
        if v.get("format").and_then(Value::as_str) != Some(PUBLIC_FORMAT) {
            let what = if v.get("format").and_then(Value::as_str) == Some(SECRET_FORMAT) {
                "this is the secret key: verify with the public one (audit.pub)"
            } else {
                "not a v8box public key (made by `v8box audit keygen`)"
            };
            return Err(what.into());
        }
        let bytes = hex_array::<32>(&v, "key")?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| "\"key\" is not an Ed25519 public key".into())
    }

    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }
}

/// Where `keygen` put the two files.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The sealing key (`--audit-key`): keep it where scripts and readers of the log cannot.
    pub secret: PathBuf,
    /// The verification key (`audit verify --key`): give it to whoever checks the log.
    pub public: PathBuf,
    /// The verification key itself.
    pub key: PublicKey,
}

/// Makes a new key pair in `dir` (created if missing): `audit.key` (mode 0600) and `audit.pub`.
/// Never overwrites an existing key. One key pair seals one log.
pub fn keygen(dir: &Path) -> io::Result<KeyPair> {
    std::fs::create_dir_all(dir)?;
    let secret = dir.join(SECRET_FILE);
    let public = dir.join(PUBLIC_FILE);
    for p in [&secret, &public] {
        if p.symlink_metadata().is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists; a key pair is never overwritten (choose another --out)",
                    p.display()
                ),
            ));
        }
    }
    let master = random_key()?;
    let first = random_key()?;
    let cert = master.sign(&cert_message(0, &first.verifying_key()));
    let master_public = master.verifying_key();
    drop(master); // zeroized: it certified epoch 0 and is needed no more
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)?;
    file.write_all(secret_text(0, &first, &cert, &master_public).as_bytes())?;
    file.sync_all()?;
    let mut pubfile = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&public)?;
    let text = serde_json::json!({ "format": PUBLIC_FORMAT, "key": hex::encode(master_public.as_bytes()) });
    pubfile.write_all(format!("{text}\n").as_bytes())?;
    pubfile.sync_all()?;
    sync_dir(dir);
    Ok(KeyPair {
        secret,
        public,
        key: PublicKey(master_public),
    })
}

fn secret_text(
    epoch: u64,
    key: &SigningKey,
    cert: &Signature,
    master: &VerifyingKey,
) -> Zeroizing<String> {
    let mut seed = Zeroizing::new(hex::encode(key.to_bytes()));
    let text = Zeroizing::new(format!(
        "{{\"format\":\"{SECRET_FORMAT}\",\"epoch\":{epoch},\"key\":\"{}\",\"cert\":\"{}\",\"master\":\"{}\"}}\n",
        seed.as_str(),
        hex::encode(cert.to_bytes()),
        hex::encode(master.as_bytes())
    ));
    seed.zeroize();
    text
}

fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The sealing key of one log as it is now: held, and its file locked, by the log it seals.
pub struct SealKey {
    path: PathBuf,
    /// The open secret file (locked): its bytes are overwritten when it is replaced.
    file: File,
    epoch: u64,
    key: SigningKey,
    cert: Signature,
    master: VerifyingKey,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("path", &self.path)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// The last checkpoint of a log, as `AuditLog::open` finds it.
#[derive(Debug, Clone)]
pub(super) struct LastCheckpoint {
    pub(super) seq: u64,
    pub(super) epoch: u64,
    pub(super) key: [u8; 32],
}

impl SealKey {
    /// Reads and locks a secret file written by `keygen` (or evolved since).
    pub fn load(path: &Path) -> io::Result<SealKey> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{} is in use by another audit log (a process holds its lock): one key \
                         seals one log",
                        path.display()
                    ),
                ))
            }
            Err(std::fs::TryLockError::Error(_)) => {}
        }
        let mut text = Zeroizing::new(String::new());
        io::Read::read_to_string(&mut &file, &mut text)?;
        let mut v: Value = serde_json::from_str(&text).map_err(|_| {
            invalid(
                path,
                "not a v8box secret key (made by `v8box audit keygen`)",
            )
        })?;
        if v.get("format").and_then(Value::as_str) != Some(SECRET_FORMAT) {
            let why = if v.get("format").and_then(Value::as_str) == Some(PUBLIC_FORMAT) {
                "this is the public key: seal with the secret one (audit.key)"
            } else {
                "not a v8box secret key (made by `v8box audit keygen`)"
            };
            return Err(invalid(path, why));
        }
        let epoch = v
            .get("epoch")
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid(path, "no \"epoch\""))?;
        let seed = Zeroizing::new(hex_array::<32>(&v, "key").map_err(|e| invalid(path, e))?);
        let cert =
            Signature::from_bytes(&hex_array::<64>(&v, "cert").map_err(|e| invalid(path, e))?);
        let master =
            VerifyingKey::from_bytes(&hex_array::<32>(&v, "master").map_err(|e| invalid(path, e))?)
                .map_err(|_| invalid(path, "\"master\" is not an Ed25519 public key"))?;
        if let Some(Value::String(s)) = v.get_mut("key") {
            s.zeroize();
        }
        Ok(SealKey {
            path: path.to_path_buf(),
            file,
            epoch,
            key: SigningKey::from_bytes(&seed),
            cert,
            master,
        })
    }

    /// The epoch of the key (0 for a new key; one more after each checkpoint).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The secret file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that this key continues the seal of a log whose last checkpoint is `last`
    /// (`None`: a log without one), and brings it there: a key whose checkpoint was written
    /// but that was not evolved after it (the process died in between) is evolved now.
    pub(super) fn take_up(&mut self, last: Option<&LastCheckpoint>, log: &Path) -> io::Result<()> {
        let refuse = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the key {} does not continue the seal of {}: {why} (one key pair seals one \
                     log: make a new one with `v8box audit keygen` for a new log)",
                    self.path.display(),
                    log.display()
                ),
            )
        };
        match last {
            None if self.epoch == 0 => {
                self.master
                    .verify_strict(&cert_message(0, &self.key.verifying_key()), &self.cert)
                    .map_err(|_| refuse("its epoch 0 certificate does not verify".into()))?;
                Ok(())
            }
            None => Err(refuse(format!(
                "the key is at epoch {} (it has sealed a log), the log has no checkpoint",
                self.epoch
            ))),
            Some(cp) => {
                let logged = VerifyingKey::from_bytes(&cp.key)
                    .map_err(|_| refuse("its last checkpoint's key is not a key".into()))?;
                if self.epoch == cp.epoch && logged == self.key.verifying_key() {
                    // The checkpoint was written, the key not yet evolved.
                    return self.evolve();
                }
                if self.epoch == cp.epoch + 1
                    && logged
                        .verify_strict(
                            &cert_message(self.epoch, &self.key.verifying_key()),
                            &self.cert,
                        )
                        .is_ok()
                {
                    return Ok(());
                }
                Err(refuse(format!(
                    "the key is at epoch {}, the log's last checkpoint (seq {}) is of epoch {} \
                     and did not certify it",
                    self.epoch, cp.seq, cp.epoch
                )))
            }
        }
    }

    /// The epoch, public key and certificate a checkpoint carries.
    pub(super) fn public_parts(&self) -> (u64, String, String) {
        (
            self.epoch,
            hex::encode(self.key.verifying_key().as_bytes()),
            hex::encode(self.cert.to_bytes()),
        )
    }

    /// Signs a checkpoint's text (see `checkpoint_message`): 128 hex digits.
    pub(super) fn sign(&self, body: &[u8]) -> String {
        hex::encode(self.key.sign(&checkpoint_message(body)).to_bytes())
    }

    /// Moves to the next epoch: a fresh key, certified by this one, replaces it in the secret
    /// file (written to a new file, flushed, renamed over the old one), then the old file's
    /// bytes are overwritten and this key is dropped (zeroized). On an error the key stays
    /// as it was.
    pub(super) fn evolve(&mut self) -> io::Result<()> {
        let next = random_key()?;
        let epoch = self.epoch + 1;
        let cert = self.key.sign(&cert_message(epoch, &next.verifying_key()));
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut suffix = [0u8; 8];
        getrandom::getrandom(&mut suffix)
            .map_err(|e| io::Error::other(format!("getrandom: {e}")))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| SECRET_FILE.into());
        let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));
        let written = (|| {
            // Write-only: under --isolation=thread Landlock lets the key's folder make and
            // write files, not read them.
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            // Locked before it takes the key's name: no other log can take it up meanwhile.
            let _ = file.try_lock();
            file.write_all(secret_text(epoch, &next, &cert, &self.master).as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            sync_dir(dir);
            Ok::<File, io::Error>(file)
        })();
        let file = match written {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot replace the audit key {}: {e}", self.path.display()),
                ));
            }
        };
        // The old key's bytes, in the file no name leads to any more, are overwritten.
        if let Ok(meta) = self.file.metadata() {
            let zeros = vec![0u8; meta.len() as usize];
            let _ = self.file.write_all_at(&zeros, 0);
            let _ = self.file.sync_data();
        }
        self.file = file;
        self.epoch = epoch;
        self.key = next; // the old key is zeroized as it is dropped
        self.cert = cert;
        Ok(())
    }
}

/// What the verifier trusts as it walks a log's checkpoints.
pub(super) struct Trust {
    /// The epoch the next checkpoint must have.
    pub(super) epoch: u64,
    /// The key that must have certified it.
    key: VerifyingKey,
}

impl Trust {
    pub(super) fn new(master: &PublicKey) -> Trust {
        Trust {
            epoch: 0,
            key: master.0,
        }
    }

    /// Checks a checkpoint (`record` parsed, `body` its text without `sig` and `hash`,
    /// `sig` its signature's hex digits); on success trusts its key from then on.
    pub(super) fn check(&mut self, record: &Value, body: &[u8], sig: &str) -> Result<(), String> {
        let epoch = record
            .get("epoch")
            .and_then(Value::as_u64)
            .ok_or("the checkpoint has no \"epoch\"")?;
        if epoch != self.epoch {
            return Err(format!(
                "the checkpoint is of epoch {epoch}, expected {}: a checkpoint before it was \
                 removed, or it comes from another log",
                self.epoch
            ));
        }
        let key = hex_array::<32>(record, "key")?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| "\"key\" is not a key")?;
        let cert = Signature::from_bytes(&hex_array::<64>(record, "cert")?);
        let mut raw = [0u8; 64];
        hex::decode_to_slice(sig, &mut raw).map_err(|_| "\"sig\" is not 128 hex digits")?;
        let sig = Signature::from_bytes(&raw);
        if self
            .key
            .verify_strict(&cert_message(epoch, &key), &cert)
            .is_err()
        {
            let by = if epoch == 0 {
                "the verification key".to_string()
            } else {
                format!("epoch {}'s key", epoch - 1)
            };
            return Err(format!(
                "the checkpoint's key (epoch {epoch}) is not certified by {by}: the log was \
                 sealed with another key, or spliced from another log"
            ));
        }
        if key.verify_strict(&checkpoint_message(body), &sig).is_err() {
            return Err(format!(
                "the checkpoint's signature (epoch {epoch}) does not match the log: a record it \
                 seals was changed, removed, inserted or moved after it was sealed (and the \
                 chain recomputed), or records were spliced in from another log"
            ));
        }
        self.epoch += 1;
        self.key = key;
        Ok(())
    }
}

/// Splits a checkpoint's text (without `hash`, see `unseal`) into the text its signature
/// covers and the signature's hex digits.
pub(super) fn split_sig(body: &[u8]) -> Option<(Vec<u8>, &str)> {
    if body.len() < SIG_SUFFIX_LEN + 2 || !body.ends_with(b"\"}") {
        return None;
    }
    let cut = body.len() - SIG_SUFFIX_LEN;
    if !body[cut..].starts_with(SIG_FIELD.as_bytes()) {
        return None;
    }
    let sig = std::str::from_utf8(&body[cut + SIG_FIELD.len()..body.len() - 2]).ok()?;
    let mut signed = body[..cut].to_vec();
    signed.push(b'}');
    Some((signed, sig))
}

/// The grant of `policy` that would let a script reach the secret key at `key` (read it,
/// write or rename it, or import it as a module), if one does: a script that can read the
/// sealing key can sign whatever it likes in the current epoch and every later one. Paths
/// are compared where they really lie (symlinks resolved), as the file operations do.
pub fn key_within_reach(policy: &crate::policy::Policy, key: &Path) -> Option<String> {
    use crate::policy::{Permission, Target};
    let real = std::fs::canonicalize(key).ok()?;
    let spelled = crate::loader::normalize(&std::env::current_dir().ok()?.join(key));
    policy.grants.iter().find_map(|g| {
        let covers = match (&g.permission, &g.target) {
            (Permission::Read | Permission::Write | Permission::Module, Target::All) => true,
            (Permission::Read | Permission::Write | Permission::Module, Target::Path(p)) => {
                let located = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                real.starts_with(&located) || real.starts_with(p) || spelled.starts_with(p)
            }
            _ => false,
        };
        covers.then(|| format!("{} ({})", g.source.rule(), g.target))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::tests::info;
    use crate::audit::{sha256_hex, verify_report, AuditLog, Verdict};

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_sealed_log_has_a_checkpoint_every_seal_every_records_and_at_its_close() {
        let dir = tempfile::tempdir().unwrap();
        let pair = keygen(&dir.path().join("keys")).unwrap();
        let path = dir.path().join("a.log");
        let log = AuditLog::open_sealed(&path, "w", &pair.secret).unwrap();
        let calls = 2 * SEAL_EVERY + 5;
        for _ in 0..calls {
            log.call(info("now", "", "always allowed"), "ok", 0, None);
        }
        drop(log);
        let recs: Vec<Value> = lines(&path)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let cps: Vec<(u64, u64)> = recs
            .iter()
            .filter(|r| r["kind"] == CHECKPOINT)
            .map(|r| (r["seq"].as_u64().unwrap(), r["epoch"].as_u64().unwrap()))
            .collect();
        let n = SEAL_EVERY;
        assert_eq!(cps, [(n + 1, 0), (2 * n + 2, 1), (calls + 3, 2)]);
        let bytes = std::fs::read(&path).unwrap();
        let report = verify_report(&bytes, Some(&pair.key));
        assert!(report.holds(), "{report:?}");
        assert_eq!((report.checkpoints, report.unsealed), (3, None));
        // Another key pair's verification key refuses it.
        let other = keygen(&dir.path().join("other")).unwrap();
        let report = verify_report(&bytes, Some(&other.key));
        assert!(
            matches!(&report.verdict, Verdict::Bad { line, reason } if *line as u64 == n + 1 && reason.contains("not certified by the verification key")),
            "{report:?}"
        );
    }

    #[test]
    fn a_stolen_current_key_cannot_reseal_an_earlier_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let pair = keygen(&dir.path().join("keys")).unwrap();
        let path = dir.path().join("a.log");
        let log = AuditLog::open_sealed(&path, "w", &pair.secret).unwrap();
        log.call(
            info("fs.readFile", "/etc/shadow", "default deny"),
            "ok",
            0,
            None,
        );
        log.call(info("env.get", "HOME", "--allow-env"), "ok", 0, None);
        drop(log); // checkpoint of epoch 0; the key file now holds epoch 1's key
        let stolen = SealKey::load(&pair.secret).unwrap();
        assert_eq!(stolen.epoch(), 1);
        // The thief edits record 1, re-chains it, and signs a new checkpoint with what it has:
        // labelled epoch 0 (its certificate is for epoch 1) or epoch 1 (none for 0 comes first).
        let l = lines(&path);
        let edited = l[0].replace("/etc/shadow", "/etc/hostname");
        let rehash = |line: &str, prev: &str| {
            let body = &line[..line.len() - 75];
            let at = body.rfind(",\"prev\":\"").unwrap() + 9;
            let body = format!("{}{}{}}}", &body[..at], prev, &body[at + 64..]);
            let hash = sha256_hex(body.as_bytes());
            (
                format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]),
                hash,
            )
        };
        let (r1, h1) = rehash(&edited, crate::audit::GENESIS);
        let (r2, h2) = rehash(&l[1], &h1);
        for label in [0, 1] {
            let (_, key, cert) = stolen.public_parts();
            let body = format!(
                "{{\"seq\":3,\"ts\":\"2026-01-01T00:00:00.000000Z\",\"worker\":\"audit\",\"kind\":\"checkpoint\",\"op\":\"audit.seal\",\"epoch\":{label},\"first\":1,\"last\":2,\"key\":\"{key}\",\"cert\":\"{cert}\",\"prev\":\"{h2}\"}}"
            );
            let sig = stolen.sign(body.as_bytes());
            let signed = format!("{},\"sig\":\"{sig}\"}}", &body[..body.len() - 1]);
            let hash = sha256_hex(signed.as_bytes());
            let cp = format!("{},\"hash\":\"{hash}\"}}", &signed[..signed.len() - 1]);
            let forged = format!("{r1}\n{r2}\n{cp}\n");
            assert!(verify_report(forged.as_bytes(), None).holds());
            let report = verify_report(forged.as_bytes(), Some(&pair.key));
            assert!(
                matches!(&report.verdict, Verdict::Bad { line: 3, .. }),
                "epoch {label}: {report:?}"
            );
        }
    }
}
