// snout serve — placeholder until its issue lands (owned by the helper working on it).
import { UserError } from '../errors';
export async function run(_argv: string[]): Promise<number> {
  throw new UserError('"serve" is not implemented yet');
}
