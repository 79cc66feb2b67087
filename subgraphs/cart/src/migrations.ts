import { CATALOGUE_TABLE_SQL, Migration, type NamedMigration } from '@swiftcart/platform';

/**
 * The cart's database holds no carts (Redis does): only its replica of the catalogue, which refuses
 * unknown and discontinued skus and prices the lines, and the inbox of the consumer that feeds it.
 */
class CreateCatalogue extends Migration {
  override up(): void {
    this.addSql(CATALOGUE_TABLE_SQL);
  }
}

/** The cart service's migrations, in order; never edit one that has shipped. */
export const migrations: readonly NamedMigration[] = [{ name: '0001_catalogue', class: CreateCatalogue }];
