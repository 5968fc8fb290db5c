// The engine process the extension spawns: `node dist/engine.js` = `snout serve --stdio`.
import('./cli/serve').then((m) => m.run(['--stdio', ...process.argv.slice(2)])).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { process.stderr.write(`snout engine: ${err?.message ?? err}\n`); process.exitCode = 1; },
);
