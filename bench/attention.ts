// Placeholder until its issue lands.
import { UserError } from '../engine/errors';
export async function run(_argv: string[]): Promise<number> {
  throw new UserError('bench attention is not implemented yet');
}
