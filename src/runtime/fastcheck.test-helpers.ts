// Every property test of a run uses one seed: FC_SEED when set (to replay a failure), else a
// random one. fast-check names the seed (and the path to the smallest counterexample) in its
// failure message; `FC_SEED=<seed> npm run test:unit -- <file>` runs the same cases again.
import fc from 'fast-check';

const given = process.env.FC_SEED;
const seed =
  given === undefined || given === '' ? Math.floor(Math.random() * 0x7fffffff) : Number(given);
if (!Number.isSafeInteger(seed))
  throw new Error(`FC_SEED must be an integer, not ${String(given)}`);
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
