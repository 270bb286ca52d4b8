//! `callrec-gateway user ...`: user management on the data folder while the server is stopped
//! (the folder's lock refuses a second process), or on the database while gateways run (they
//! follow its log like any gateway's commit).

use std::io::BufRead;

use anyhow::Context;

use crate::config::{DataArgs, UserArgs, UserCommand};
use crate::model::{Level, NewUser, Principal};
use crate::server::{OpenStore, open_store};
use crate::service::{Service, SessionSettings};
use crate::store::Sequence;
use crate::store::dump::Dump;

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

pub async fn user(args: UserArgs) -> anyhow::Result<()> {
    let store = open_store(&args.data, true).await?;
    let service = Service::new(store.store(), SessionSettings::default()).await?;
    let console = Principal::console();
    match args.command {
        UserCommand::Add {
            username,
            level,
            tenant,
            group,
        } => {
            let new = NewUser {
                level: Level::from_number("level", level)?,
                password: read_password()?,
                username,
                tenant_id: tenant,
                group_id: group,
            };
            let user = service.add_user(&console, new).await?;
            println!("added {} ({})", user.username, user.level.label());
        }
        UserCommand::List => {
            for u in service.users(&console)? {
                let scope = [u.tenant_id.as_deref(), u.group_id.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("/");
                println!(
                    "{}\t{}\t{}\t{}",
                    u.username,
                    u.level.number(),
                    u.level.label(),
                    scope
                );
            }
        }
        UserCommand::Delete { username } => {
            service.delete_user(&console, &username).await?;
            println!("deleted {username}");
        }
        UserCommand::Passwd { username } => {
            service
                .set_password(&console, &username, &read_password()?)
                .await?;
            println!("password set for {username}; its sessions are ended");
        }
    }
    service.flush().await?;
    Ok(())
}

/// `callrec-gateway export`: the store as JSON on standard output.
pub async fn export(args: DataArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let store = open_store(&args, true).await?;
    let dump = Dump::of(store.store().as_ref()).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(dump.to_json()?.as_bytes())
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush())
        .context("cannot write the export to standard output")?;
    Ok(())
}

/// `callrec-gateway import`: an export from standard input into a new store.
pub async fn import(args: DataArgs) -> anyhow::Result<()> {
    use std::io::Read;
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .read_to_string(&mut text)
        .context("cannot read the export from standard input")?;
    let dump = Dump::parse(&text)?;
    let changes = dump.changes()?;
    let sequence = Sequence(dump.sequence);
    match open_store(&args, true).await? {
        OpenStore::Folder(store) => store.import(&changes, &dump.log, sequence)?,
        OpenStore::Database(store) => store.import(&changes, &dump.log, sequence).await?,
    }
    // Not eprintln!: it panics when stderr cannot be written.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "imported {} platforms, {} tenants, {} groups, {} users and {} log entries (log position {})",
        dump.platforms.len(),
        dump.tenants.len(),
        dump.groups.len(),
        dump.users.len(),
        dump.log.len(),
        dump.sequence
    );
    Ok(())
}
