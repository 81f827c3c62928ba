pub fn run() -> anyhow::Result<()> { anyhow::bail!("doctor: being written") }
