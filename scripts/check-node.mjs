// The suite runs on the Node 24 that the `node` devDependency pins (npm scripts put it first on
// PATH). On an older Node, say so plainly instead of failing later on type stripping or engines.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`comms needs Node >= 24 (found ${process.version}). Run the tests through npm ("npm test") after "npm ci", which installs the pinned Node 24.`);
  process.exit(1);
}
