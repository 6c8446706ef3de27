//! A host application exchanging byte messages with a sandboxed script.
//!
//!     cargo run --example host_echo
//!
//! The script upper-cases what the host sends on channel `in` and answers on `out`; the host
//! also asks it a question with `request` and waits for the answer.

use std::time::Duration;

use v8box::policy::Permission;
use v8box::Sandbox;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder()
        .allow(Permission::Host, "in")?
        .allow(Permission::Host, "out")?
        .allow(Permission::Host, "ask")?
        .channel("in")
        .channel("out")
        .channel("ask")
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut run = sandbox.run_module(
        "echo.js",
        r#"
        const text = (bytes) => new TextDecoder().decode(bytes);
        sys.host.onMessage('in', (data) => sys.host.send('out', text(data).toUpperCase()));
        sys.host.onMessage('ask', (question) => `you asked: ${text(question)}`);
        console.log('script ready');
        "#,
    );
    let to_script = run.sender("in").expect("channel in");
    let from_script = run.receiver("out").expect("channel out");
    for word in ["hello", "sandboxed", "world"] {
        to_script.send(word)?;
        let answer = from_script.recv_timeout(Duration::from_secs(5))?;
        println!(
            "host sent {word:?}, script answered {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    let answer = run.request("ask", "what is 6 * 7?", Duration::from_secs(5))?;
    println!("request answered: {:?}", String::from_utf8_lossy(&answer));
    // No more messages will come: the script, which only listens, ends.
    drop(to_script);
    run.close_channels();
    println!("script ended: {:?}", run.wait());
    Ok(())
}
